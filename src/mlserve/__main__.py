"""``python -m mlserve``: the command-line interface."""

from mlserve.cli import main

main()
