"""Ablations (Table V) and sensitivity sweeps (Figs. 7-9) over an existing training run.

:func:`mea_cli.ablate.api.ablate` and :func:`mea_cli.ablate.api.sweep` are the entry points of
``mea ablate`` and ``mea sweep``; :mod:`.rows` orders Table V, :mod:`.runner` runs resumable
multi-seed jobs, :mod:`.table` renders mean +- std tables (rich, Markdown, CSV, LaTeX).
"""
