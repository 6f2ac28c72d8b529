"""Extraction from media (``mea extract``, ``mea merge``): clips and labels found, decoded
with PyAV, text (sidecar or ASR, GloVe or MiniLM), face blendshapes and openSMILE acoustics
extracted at their native rates by worker processes, and packed into one feature store
(docs/extraction.md)."""
