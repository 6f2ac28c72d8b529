"""mea-cli: multimodal sentiment and emotion recognition from raw video with MEA."""

__version__ = "0.1.0"

MODALITIES: tuple[str, ...] = ("text", "vision", "audio")
"""Canonical modality order (the paper's L, V, A)."""
