"""A warm interpreter for the tests (``warm.py`` starts and asks it): it imports mea_cli and every module its commands import
(torch, h5py, ...) once, then runs each request as ``python -m mea_cli ARGS`` would, in a child
forked from itself: ``runpy`` runs ``mea_cli/__main__.py`` as ``__main__`` (what ``-m`` does),
stdin is /dev/null, stdout and stderr go to files, and the child's exit status is the reply.

Why: a fresh interpreter spends 2-3 CPU seconds importing torch before a command can even refuse
its input, and the suite runs several hundred commands. A fork costs milliseconds. The entry
point, the argument parsing and every check are the same code; what a fork cannot show
(start-up itself, interpreter flags, environment read at start-up) stays with the cases that
start a fresh interpreter (``warm.run(..., fresh=True)``, see there).

The child takes the request's environment and imports ``mea_cli.cli`` again in it (its two
consoles read their width and colours when they are made, ``warm.REMADE``); only what libraries
read while importing (the rest of ``warm.CONSOLE``) comes from the interpreter's own, so
``warm.py`` keeps one warm interpreter per value of those.

Protocol: one JSON object per line on stdin,
``{"args": [...], "cwd": "...", "env": {...}, "timeout": s}``;
one JSON line per request on the original stdout, ``{"rc": n, "stdout": "...", "stderr": "..."}``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import pkgutil
import runpy
import signal
import sys
import tempfile
import traceback


def warm() -> None:
    """Import every module of mea_cli (an optional extra that is not installed is skipped)."""
    import mea_cli

    for module in pkgutil.walk_packages(mea_cli.__path__, "mea_cli.", onerror=lambda name: None):
        if module.name.rsplit(".", 1)[-1] == "__main__":
            continue  # running, not importing
        try:
            importlib.import_module(module.name)
        except ImportError:
            continue


def child(args: list[str], cwd: str, env: dict[str, str], timeout: float, out: str,
          err: str) -> None:
    """In the forked child: become ``python -m mea_cli ARGS`` run from ``cwd`` in ``env``;
    never returns."""
    code = 1
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        for fd, path in ((1, out), (2, err)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
        signal.alarm(max(1, int(timeout)))  # SIGALRM's default action ends a child that hangs
        sys.argv = ["-m", *args]  # runpy puts the module's path in argv[0], as -m does
        sys.path[0] = cwd  # -m puts the working folder first, not this script's (tests/)
        try:
            importlib.reload(sys.modules["mea_cli.cli"])  # its consoles made in this environment
            runpy.run_module("mea_cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught one
            traceback.print_exc()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def serve() -> None:
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # children read nothing
    os.dup2(2, 1)  # a stray print while importing cannot corrupt the replies
    warm()
    scratch = tempfile.mkdtemp(prefix="mea-zygote-")
    for line in requests:
        req = json.loads(line)
        out, err = (os.path.join(scratch, name) for name in ("out", "err"))
        for path in (out, err):
            open(path, "w").close()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            requests.close()
            replies.close()
            child(req["args"], req["cwd"], req["env"], req["timeout"], out, err)
        _, status = os.waitpid(pid, 0)
        with open(out, errors="replace") as o, open(err, errors="replace") as e:
            reply = {"stdout": o.read(), "stderr": e.read()}
        reply["rc"] = os.waitstatus_to_exitcode(status)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
