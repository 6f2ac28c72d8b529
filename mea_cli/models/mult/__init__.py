"""MulT (Tsai et al., ACL 2019): the crossmodal transformers and the model, with its paper
metadata. The registry imports ``model`` (:data:`~mea_cli.models.core.registry.BUILTIN`)."""
