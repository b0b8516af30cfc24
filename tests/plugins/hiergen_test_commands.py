"""Test plugin adding commands that fail in different ways, and a clashing ``plugins``."""

from __future__ import annotations

import click

import hiergen
from hiergen.errors import DataError
from hiergen.plugins import CommandSpec


@click.command("boom-data")
def boom_data() -> None:
    """Raise a DataError with a hint."""
    raise DataError("visits.csv: column 'age' holds 'abc' in row 3", hint="ages are numbers")


@click.command("boom-value")
@click.option("--alpha", type=float, default=-1.0)
def boom_value(alpha: float) -> None:
    """Raise a ValueError."""
    raise ValueError(f"alpha must be >= 0, got {alpha}")


@click.command("boom-internal")
def boom_internal() -> None:
    """Raise an unexpected error."""
    raise RuntimeError("something broke\ninside")


@click.command("plugins")
def fake_plugins() -> None:
    """A clash with the built-in ``plugins`` command."""
    click.echo("FAKE")


@hiergen.hookimpl
def hiergen_commands() -> list[CommandSpec]:
    return [
        CommandSpec("boom-data", boom_data),
        CommandSpec("boom-value", boom_value),
        CommandSpec("boom-internal", boom_internal),
    ]


class ClashPlugin:
    """Registered on its own: a command named like the built-in ``plugins``."""

    @hiergen.hookimpl
    def hiergen_commands(self) -> list[CommandSpec]:
        return [CommandSpec("plugins", fake_plugins)]
