"""MEA (IEEE TCSVT) and MFSA (ACM MM 2022), one family: their config and switches, the
PSA / HCA / WAL / DGF parts and the branches both share, and their paper metadata.

The registry imports ``model`` and ``mfsa`` (:data:`~mea_cli.models.core.registry.BUILTIN`)."""
