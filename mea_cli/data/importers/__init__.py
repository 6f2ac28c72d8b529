"""Importers of the CMU benchmark feature sets into the feature store (``mea import``).

Three layouts are read: the MulT pickles (:func:`import_mult`), the MMSA pickles
(:func:`import_mmsa`) and CMU-MultimodalSDK computational sequences (:func:`import_csd`). Each
returns an :class:`ImportReport` and writes the store atomically (no output on any error). The
two pickle layouts share one path (:func:`~mea_cli.data.importers.pipeline.import_padded`), each
a small reader of what differs. What the importers share sits in one module a job: ``errors``,
``datasets`` (the benchmarks and their labels), ``pickles`` (safe loading), ``cleaning``
(padding, non-finite and reversed values), ``report`` and ``store`` (the atomic write).
"""

from mea_cli.data.importers.csd import import_csd
from mea_cli.data.importers.errors import ImportFormatError
from mea_cli.data.importers.mmsa import import_mmsa
from mea_cli.data.importers.mult import import_mult
from mea_cli.data.importers.report import ImportReport

__all__ = ["ImportFormatError", "ImportReport", "import_csd", "import_mmsa", "import_mult"]
