"""``python -m mea_cli`` (also the entry point for ``torchrun -m mea_cli``)."""

from mea_cli.cli import main

if __name__ == "__main__":
    main()
