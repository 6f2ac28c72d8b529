"""Test-only gates for ``mea`` subprocesses, so that a test interrupts a command at a known
point instead of racing it (see ``tests/gates.py``, which puts this folder on ``PYTHONPATH``).

``MEA_TEST_GATE`` = ``<folder>:<point>:<n>``. Every time the process (or any process of the
same command: extraction workers inherit the environment) reaches ``point``, it takes the next
ticket in ``folder``; tickets ``0 .. n-1`` go on, every later one writes ``blocked-<ticket>``
(holding its pid) and waits until a signal ends it. Points:

* ``video``: before a video is extracted (``Pipeline.extract_video``);
* ``epoch``: after a training epoch's state is saved (``Trainer.save``);
* ``sample``: ``mea synth`` after ``n`` samples were written (one ticket, taken then).

Without ``MEA_TEST_GATE`` this module does nothing.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path


def _gate(folder: Path, passes: int) -> None:
    ticket = 0
    while True:
        try:
            os.close(os.open(folder / f"ticket-{ticket}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            ticket += 1
    if ticket < passes:
        return
    (folder / f"blocked-{ticket}").write_text(str(os.getpid()))
    while True:  # until a signal handler raises (or the process is killed)
        time.sleep(3600)


def _install(spec: str) -> None:
    folder, point, passes = spec.rsplit(":", 2)
    gate = functools.partial(_gate, Path(folder), int(passes))
    if point == "video":
        from mea_cli.extract.pipeline import Pipeline

        original = Pipeline.extract_video

        def extract_video(self, key, path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            gate()
            return original(self, key, path, *args, **kwargs)

        Pipeline.extract_video = extract_video
    elif point == "epoch":
        from mea_cli.train.trainer import Trainer

        original_save = Trainer.save

        def save(self):  # noqa: ANN001, ANN202
            original_save(self)
            gate()

        Trainer.save = save
    elif point == "sample":
        from mea_cli.data import synth

        original_generate = synth.generate

        def generate(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            for k, item in enumerate(original_generate(*args, **kwargs)):
                if k == int(passes):
                    _gate(Path(folder), 0)
                yield item

        synth.generate = generate
    else:
        raise ValueError(f"MEA_TEST_GATE: unknown point {point!r}")


if os.environ.get("MEA_TEST_GATE"):
    _install(os.environ["MEA_TEST_GATE"])
