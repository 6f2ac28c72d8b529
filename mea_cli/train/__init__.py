"""Training runs (``mea train``, ``mea eval``): settings and presets, the trainer (Adam,
ReduceLROnPlateau, early stopping on valid), evaluation with the literature's metrics,
cross-validation folds, ensembles of seeds and the run folder's files (docs/training.md)."""
