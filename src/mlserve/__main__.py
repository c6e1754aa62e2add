"""``python -m mlserve``: the command-line interface."""

from mlserve.cli.main import main

main()
