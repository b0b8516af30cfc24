"""The ``hiergen`` click group: options common to every subcommand and error reporting.

Errors print as ``Error: <message>`` with a ``Hint:`` line and exit with code 1 (2 for usage
errors); ``--debug`` (or ``HIERGEN_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import click

from hiergen import __version__
from hiergen.errors import HiergenError
from hiergen.plugins.manager import PluginWarning
from hiergen.plugins.records import CommandSpec

_DEBUG_HINT = "rerun with --debug to see the traceback"


@dataclass
class CliState:
    """Global options, available to subcommands as ``ctx.find_object(CliState)``."""

    debug: bool = False
    verbose: int = 0


class CliError(click.ClickException):
    """An exception shown as one ``Error:`` line plus a ``Hint:`` line; exit code 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    @classmethod
    def from_exception(cls, exc: BaseException) -> CliError:
        hint = getattr(exc, "hint", None) if isinstance(exc, HiergenError) else None
        if isinstance(exc, (HiergenError, ValueError, TypeError, OSError, LookupError)):
            text = str(exc) or type(exc).__name__
            if isinstance(exc, KeyError) and exc.args:
                text = str(exc.args[0])
            if isinstance(exc, OSError) and not isinstance(exc, HiergenError):
                text = f"{type(exc).__name__}: {text}"
        else:
            text = f"internal error ({type(exc).__name__}): {exc}"
        return cls(" ".join(text.split()), hint or _DEBUG_HINT)

    def show(self, file: IO[Any] | None = None) -> None:
        stream = file if file is not None else sys.stderr
        click.echo(f"Error: {self.format_message()}", file=stream)
        if self.hint:
            click.echo(f"Hint: {self.hint}", file=stream)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    click.echo(f"Warning: {message}", err=True)


def _plugin_commands() -> dict[str, CommandSpec]:
    """Subcommands from the ``hiergen_commands`` hook; on a name clash the first (built-ins
    register first) wins and a warning names both providers."""
    from hiergen.plugins.registry import plugin_records

    chosen: dict[str, Any] = {}
    for rec in plugin_records(["commands"]):
        first = chosen.get(rec.name)
        if first is not None:
            warnings.warn(
                f"command {rec.name!r} is provided twice: by {first.provider} and by "
                f"{rec.provider}; using the first",
                PluginWarning,
                stacklevel=2,
            )
            continue
        chosen[rec.name] = rec
    return {name: rec.record for name, rec in chosen.items()}


def _debug_on(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug"))


class HiergenGroup(click.Group):
    """A group whose subcommands come from plugins and whose errors print as one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            spec = _plugin_commands().get(cmd_name)
            command = spec.command if spec is not None else None
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if _debug_on(ctx):
                raise
            raise CliError.from_exception(exc) from exc

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return super().main(*args, **kwargs)


@click.group(
    cls=HiergenGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    __version__, "-V", "--version", prog_name="hiergen", message="%(prog)s %(version)s"
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="HIERGEN_DEBUG",
    help="Show tracebacks and debug logging (also HIERGEN_DEBUG=1).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """hiergen: two-stage synthetic EHR generator (ICD-9-CM categories, then codes).

    Subcommands come from plugins; `hiergen plugins` lists everything installed.
    """
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("hiergen").setLevel(level)
    ctx.obj = CliState(debug=debug, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="hiergen")


if __name__ == "__main__":  # pragma: no cover - python -m hiergen.cli.main
    main()
