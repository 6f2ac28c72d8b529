"""mea-cli: multimodal sentiment and emotion recognition from raw video with MEA.

The command line is ``mea`` (:mod:`mea_cli.cli`); the same from Python is :mod:`mea_cli.api`
(docs/python.md).
"""

__version__ = "0.1.0"

MODALITIES: tuple[str, ...] = ("text", "vision", "audio")
"""Canonical modality order (the paper's L, V, A)."""
