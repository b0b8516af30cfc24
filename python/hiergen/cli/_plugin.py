"""Built-in CLI subcommands, registered through the ``hiergen_commands`` hook."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import warnings

import click

from hiergen.cli import commands as _commands_pkg
from hiergen.plugins.manager import PluginWarning
from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import CommandSpec

logger = logging.getLogger(__name__)


def command_modules() -> list[str]:
    """Names of the modules of :mod:`hiergen.cli.commands`, sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(_commands_pkg.__path__)
        if not info.name.startswith("_")
    )


def _describe(command: click.Command) -> str:
    text = command.short_help or (command.help or "").strip()
    return text.splitlines()[0] if text else ""


@hookimpl
def hiergen_commands() -> list[CommandSpec]:
    specs: list[CommandSpec] = []
    for name in command_modules():
        module_name = f"{_commands_pkg.__name__}.{name}"
        try:
            module = importlib.import_module(module_name)
            command = module.command
        except Exception as exc:
            # One broken built-in command must not take the whole command line down.
            warnings.warn(
                f"hiergen command module {module_name} failed to load and is skipped: {exc!r}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        if not isinstance(command, click.Command):
            warnings.warn(
                f"{module_name}.command is {type(command).__name__}, not a click.Command",
                PluginWarning,
                stacklevel=2,
            )
            continue
        specs.append(CommandSpec(command.name or name, command, _describe(command)))
    return specs
