"""``mea align``: collapse every modality of a feature store onto its words (word-level alignment).

:mod:`mea_cli.align.collapse` holds the arithmetic (which steps belong to which word and how
they are reduced); :mod:`mea_cli.align.store` reads a store and writes its aligned copy.
"""

from mea_cli.align.collapse import EPSILON, REDUCES, collapse, overlaps
from mea_cli.align.store import (
    AlignError,
    AlignReport,
    align_sample,
    align_store,
    aligned_setting,
    gap_mask_note,
    native_schema,
    schema_reduce,
)

__all__ = [
    "EPSILON",
    "REDUCES",
    "AlignError",
    "AlignReport",
    "align_sample",
    "align_store",
    "aligned_setting",
    "collapse",
    "gap_mask_note",
    "native_schema",
    "overlaps",
    "schema_reduce",
]
