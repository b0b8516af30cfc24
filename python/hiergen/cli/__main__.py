"""``python -m hiergen.cli``: the ``hiergen`` command line."""

from hiergen.cli.main import main

main()
