"""A sixth model kept outside ``mea_cli/models/`` with its own paper values: it registers from
outside the package (``MEA_MODELS=fixture_model.model``) and must then appear in every command
with no file of ``mea_cli`` changed (tests/test_fixture_model.py)."""
