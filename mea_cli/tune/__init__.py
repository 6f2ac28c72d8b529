"""``mea tune``: hyper-parameter search with Optuna over model and training fields.

:mod:`~mea_cli.tune.space` parses the search space, :mod:`~mea_cli.tune.study` runs the study
(every trial a normal run, valid split only, median pruning, shared storage),
:mod:`~mea_cli.tune.report` prints the trials and writes the best ``--config`` file,
:mod:`~mea_cli.tune.command` ties them to the command line. docs/tune.md is the user's guide.
"""
