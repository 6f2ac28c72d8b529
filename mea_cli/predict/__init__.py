"""``mea predict``: raw clips -> the extraction the checkpoint records -> its model -> answers.

:func:`mea_cli.predict.api.predict` is the entry point; :mod:`mea_cli.predict.report` turns
its per-clip results into JSON, CSV and a table.
"""
