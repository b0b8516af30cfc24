"""The ``hiergen`` command line: options, help everywhere, one-line errors, ``plugins``."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import hiergen
from hiergen.cli.main import CliState, cli
from hiergen.errors import DataError
from hiergen.plugins import get_plugin_manager

TEST_PLUGINS = Path(__file__).parent / "plugins"


pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


@pytest.fixture
def boom_commands() -> Iterator[object]:
    spec = importlib.util.spec_from_file_location(
        "hiergen_test_commands", TEST_PLUGINS / "hiergen_test_commands.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pm = get_plugin_manager()
    pm.register(module, "test-commands")
    yield module
    pm.unregister(module)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"hiergen {hiergen.__version__}"


def test_help_lists_plugin_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "plugins" in result.stdout and "--debug" in result.stdout


def test_every_subcommand_has_help(runner: CliRunner) -> None:
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert "plugins" in names
    for name in names:
        for flag in ("--help", "-h"):
            result = runner.invoke(cli, [name, flag])
            assert result.exit_code == 0, (name, result.output)
            assert result.stdout.startswith(f"Usage: cli {name}") or f" {name} " in result.stdout


def test_usage_error_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_hiergen_error_is_one_line_with_its_hint(runner: CliRunner, boom_commands: object) -> None:
    result = runner.invoke(cli, ["boom-data"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: visits.csv: column 'age' holds 'abc' in row 3",
        "Hint: ages are numbers",
    ]
    assert "Traceback" not in result.output


def test_value_error_gets_the_debug_hint(runner: CliRunner, boom_commands: object) -> None:
    result = runner.invoke(cli, ["boom-value", "--alpha", "-2"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: alpha must be >= 0, got -2.0"
    assert "--debug" in lines[1]


def test_unexpected_error_is_still_one_line(runner: CliRunner, boom_commands: object) -> None:
    result = runner.invoke(cli, ["boom-internal"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "Error: internal error (RuntimeError): something broke inside"
    )


def test_debug_shows_the_exception(runner: CliRunner, boom_commands: object) -> None:
    result = runner.invoke(cli, ["--debug", "boom-data"])
    assert result.exit_code == 1
    assert isinstance(result.exception, DataError)
    assert "Error: visits.csv" not in result.output


def test_debug_from_the_environment(
    runner: CliRunner, boom_commands: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIERGEN_DEBUG", "1")
    result = runner.invoke(cli, ["boom-value"])
    assert isinstance(result.exception, ValueError)


def test_clashing_command_warns_and_builtin_wins(runner: CliRunner, boom_commands: object) -> None:
    clash = boom_commands.ClashPlugin()  # type: ignore[attr-defined]
    pm = get_plugin_manager()
    pm.register(clash, "test-commands-clash")
    try:
        result = runner.invoke(cli, ["plugins", "--kind", "command"])
    finally:
        pm.unregister(clash)
    assert result.exit_code == 0
    assert "FAKE" not in result.stdout
    assert "Warning: command 'plugins' is provided twice" in result.stderr
    assert "'test-commands-clash'" in result.stderr


def test_plugins_table(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "PLUGIN", "DISTRIBUTION", "VERSION", "DESCRIPTION"]
    rows = {line.split()[0]: line.split()[:5] for line in lines[2:] if line.strip()}
    assert rows["smoothed"] == [
        "smoothed", "weightings", "hiergen.weighting", "hiergen", hiergen.__version__,
    ]
    assert rows["plugins"][1] == "commands"


def test_plugins_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins", "--json", "--kind", "weightings"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {r["kind"] for r in data["records"]} == {"weightings"}
    assert {r["name"] for r in data["records"]} >= {"uniform", "stratified"}
    keys = {"name", "kind", "plugin", "distribution", "version"}
    assert all(set(r) >= keys for r in data["records"])
    assert any(p["name"] == "hiergen.cli" and p["builtin"] for p in data["plugins"])
    assert data["failed"] == []


def test_state_object_is_available_to_subcommands(runner: CliRunner) -> None:
    seen: list[CliState] = []

    @cli.command("probe-state")
    @click.pass_context
    def probe(ctx: click.Context) -> None:
        state = ctx.find_object(CliState)
        assert state is not None
        seen.append(state)

    try:
        result = runner.invoke(cli, ["-v", "probe-state"])
        assert result.exit_code == 0, result.output
        assert seen and seen[0].verbose == 1 and not seen[0].debug
    finally:
        cli.commands.pop("probe-state")
