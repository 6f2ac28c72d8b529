"""``python -m mea_cli`` (also the entry point for ``torchrun -m mea_cli``) and the ``mea``
script's entry point."""

import sys


def main() -> None:
    """Load the command line and run it. A Ctrl-C while its modules load (the first few tenths
    of a second, before :func:`mea_cli.cli.main` handles signals) ends as one later does: one
    line, exit 130, no traceback."""
    try:
        # late, inside the try: a Ctrl-C while the command line's modules load is caught here
        from mea_cli.cli import main as run
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        raise SystemExit(130) from None
    run()


if __name__ == "__main__":
    main()
