"""FDMER (ACM MM 2022): its config, switches, angular discriminator, constraints, CMAF fusion
and the model, with its paper metadata. The registry imports ``model`` (:data:`~mea_cli.models.core.registry.BUILTIN`)."""
