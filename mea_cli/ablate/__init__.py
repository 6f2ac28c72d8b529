"""Experiments over many trainings: ablations (the model's switches; MEA: Table V), sensitivity
sweeps (Figs. 7-9) and model comparisons with paired t-tests.

:func:`mea_cli.ablate.api.ablate`, :func:`mea_cli.ablate.api.sweep` and
:func:`mea_cli.ablate.compare.compare` are the entry points of ``mea ablate``, ``mea sweep`` and
``mea compare``; :mod:`.runner` runs resumable multi-seed jobs for all three, :mod:`.rows`
orders ablation rows, :mod:`.table` and :mod:`.compare_table` render mean +- std tables (rich,
Markdown, CSV, LaTeX).
"""
