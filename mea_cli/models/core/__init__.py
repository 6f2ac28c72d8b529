"""The model contract and registry: what every model declares (contract), where models are
found (registry), the typed output, the task losses, masks, parameter counts and the deviation
lines. Nothing here depends on a model family."""
