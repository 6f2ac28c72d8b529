"""mea-cli's Python API: what every ``mea`` command does, as functions (docs/python.md).

::

    from mea_cli import api

    api.synth("tiny.h5", like="mosi", n=24)
    run = api.train("tiny.h5", dataset="mosi", epochs=1, preset="small")
    result = api.evaluate(run.run_dir)
    report = api.predict("tiny.h5", run.run_dir)
    model = api.load_model(run.run_dir)

The command line is a wrapper of these functions (``mea_cli.cli`` parses options, calls one of
them and prints), so a script and a command do the same thing. Keyword arguments mirror the
commands' options and defaults; results are dataclasses (``to_dict()`` where the command has
a ``--json``); user mistakes raise :class:`mea_cli.errors.MeaError` subclasses (one-line
messages naming the file and the problem) and nothing is created for them. Importing this
package imports nothing heavy (not torch, not even its own submodules until a name is first
used), so ``mea --help`` starts as fast as before; each function imports what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mea_cli.errors import MeaError

if TYPE_CHECKING:  # for type checkers and editors; at run time names load on first use
    from mea_cli.api.data import (
        SynthResult,
        align,
        describe_store,
        extract,
        import_features,
        load_store,
        merge,
        synth,
    )
    from mea_cli.api.model import LoadedModel, load_model
    from mea_cli.api.runs import (
        ablate,
        compare,
        describe_model,
        evaluate,
        predict,
        sweep,
        train,
        tune,
        viz,
    )

_WHERE = {
    "data": ("SynthResult", "align", "describe_store", "extract", "import_features", "load_store",
             "merge", "synth"),
    "model": ("LoadedModel", "load_model"),
    "runs": ("ablate", "compare", "describe_model", "evaluate", "predict", "sweep",
             "train", "tune", "viz"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "LoadedModel",
    "MeaError",
    "SynthResult",
    "ablate",
    "align",
    "compare",
    "describe_model",
    "describe_store",
    "evaluate",
    "extract",
    "import_features",
    "load_model",
    "load_store",
    "merge",
    "predict",
    "sweep",
    "synth",
    "train",
    "tune",
    "viz",
]


def __getattr__(name: str) -> Any:
    """Load ``name`` from its submodule on first use (PEP 562) and keep it here."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
