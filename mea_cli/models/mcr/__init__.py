"""MCR (Knowledge-Based Systems 2023): its CMU, SCU and SUM units and the model, with its paper
metadata. The registry imports ``model`` (:data:`~mea_cli.models.core.registry.BUILTIN`)."""
