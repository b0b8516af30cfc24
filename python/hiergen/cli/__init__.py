"""The ``hiergen`` command line (click). Subcommands come from the ``hiergen_commands`` hook.

``cli`` (the click group) and ``main`` (the console-script entry point) live in
:mod:`hiergen.cli.main`; they are imported lazily so that ``python -m hiergen.cli.main`` runs
cleanly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CliState", "cli", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hiergen.cli import main as _main_module

        return getattr(_main_module, name)
    raise AttributeError(f"module 'hiergen.cli' has no attribute {name!r}")
