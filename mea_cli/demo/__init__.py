"""``make demo``: from raw video to a prediction, on clips made on the spot (examples/README.md).

:mod:`.media` synthesises speech (eSpeak NG) and encodes clips (PyAV) -- shared with the tests'
sample clips; :mod:`.clips` makes the example corpus from a real photograph; ``python -m
mea_cli.demo`` (:mod:`.__main__`) runs every step with the ``mea`` command line.
"""
