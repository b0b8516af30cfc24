"""The plugin system: built-ins, entry points, env vars, unknown/duplicate/broken plugins."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

import hiergen
from hiergen.cli.main import cli
from hiergen.errors import PluginError
from hiergen.plugins import (
    PluginWarning,
    get_plugin_manager,
    get_weighting,
    plugin_records,
    registry,
    reset_plugin_manager,
)
from hiergen.plugins.registry import get, normalise_kind
from hiergen.weighting import build_uniform

TEST_PLUGINS = Path(__file__).parent / "plugins"
REPO = Path(__file__).resolve().parents[1]
BUILTIN_WEIGHTINGS = {"context", "frequency", "smoothed", "stratified", "tempered", "uniform"}


def load_test_plugin(name: str) -> ModuleType:
    """Import ``tests/plugins/<name>.py`` by path under its own module name."""
    spec = importlib.util.spec_from_file_location(name, TEST_PLUGINS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("HIERGEN_DISABLE_PLUGIN_AUTOLOAD", "HIERGEN_PLUGINS", "HIERGEN_BLOCK_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake installed distribution whose entry points are one good and one broken plugin."""
    site = tmp_path / "site"
    info = site / "hiergen_test_fake-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hiergen-test-fake\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[hiergen]\ngood = hiergen_test_good\nbroken = hiergen_test_broken\n"
    )
    monkeypatch.syspath_prepend(str(TEST_PLUGINS))
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("hiergen_test_good", None)


# --- built-ins and look-ups ----------------------------------------------------------------
def test_hookimpl_is_exported_from_the_package() -> None:
    assert hiergen.hookimpl is hiergen.plugins.hookimpl
    assert "hookimpl" in hiergen.__all__


def test_builtin_weightings_are_registered_with_provenance() -> None:
    # Installed plugins (hiergen-torch's code_head) may add theirs beside the built-in ones.
    assert BUILTIN_WEIGHTINGS <= set(registry("weightings"))
    assert {r.name for r in plugin_records(["weightings"]) if r.builtin} == BUILTIN_WEIGHTINGS
    assert get_weighting("uniform").build is build_uniform
    recs = [r for r in plugin_records(["weighting"]) if r.name == "uniform"]
    assert len(recs) == 1
    assert recs[0].plugin == "hiergen.weighting"
    assert recs[0].distribution == "hiergen" and recs[0].builtin
    assert recs[0].version == hiergen.__version__


def test_registry_accepts_singular_and_plural_kinds() -> None:
    assert normalise_kind("Weighting") == "weightings"
    assert registry("weighting") == registry("weightings")
    with pytest.raises(PluginError, match="unknown plugin kind 'gizmos'.*weightings"):
        registry("gizmos")


def test_unknown_name_lists_what_is_available() -> None:
    with pytest.raises(PluginError) as info:
        get_weighting("frequncy")
    message = str(info.value)
    assert "unknown weighting 'frequncy'" in message
    assert "did you mean 'frequency'" in message
    for name in BUILTIN_WEIGHTINGS:
        assert name in message
    assert info.value.hint and "hiergen plugins" in info.value.hint


def test_unknown_name_of_another_kind() -> None:
    with pytest.raises(PluginError, match="unknown metric 'no-such-metric'; available: "):
        get("metrics", "no-such-metric")


def test_manager_is_cached_until_reset() -> None:
    pm = get_plugin_manager()
    assert get_plugin_manager() is pm
    reset_plugin_manager()
    assert get_plugin_manager() is not pm


# --- duplicates ------------------------------------------------------------------------------
def test_duplicate_name_names_both_providers() -> None:
    pm = get_plugin_manager()
    installed = set(registry("weightings"))
    module = load_test_plugin("hiergen_test_dup")
    pm.register(module, "test-dup", distribution="hiergen-test-dup", version="9.9")
    try:
        with pytest.raises(PluginError) as info:
            registry("weightings")
        message = str(info.value)
        assert "weighting 'uniform' is provided twice" in message
        assert "'hiergen.weighting' (distribution hiergen" in message
        assert "'test-dup' (distribution hiergen-test-dup 9.9)" in message
        with pytest.raises(PluginError, match="provided twice"):
            get_weighting("frequency")
        # The listing still shows both, flagged.
        names = [r.plugin for r in plugin_records(["weightings"]) if r.name == "uniform"]
        assert sorted(names) == ["hiergen.weighting", "test-dup"]
    finally:
        pm.unregister(module)
    assert set(registry("weightings")) == installed


# --- broken plugins ---------------------------------------------------------------------------
def test_broken_entry_point_warns_and_the_others_load(fake_dist: Path) -> None:
    with pytest.warns(PluginWarning, match=r"'broken' \(distribution hiergen-test-fake 0.3\) "
                      r"failed to import.*simulated missing dependency"):
        pm = get_plugin_manager()
    assert pm.has_plugin("good") and not pm.has_plugin("broken")
    assert [f.name for f in pm.failures] == ["broken"]
    assert "ImportError" in pm.failures[0].error
    assert "test-first" in registry("weightings")
    rec = next(r for r in plugin_records(["weightings"]) if r.name == "test-first")
    assert (rec.plugin, rec.distribution, rec.version, rec.builtin) == (
        "good", "hiergen-test-fake", "0.3", False,
    )


def test_faulty_hooks_warn_and_are_skipped() -> None:
    pm = get_plugin_manager()
    installed = set(registry("weightings"))
    module = load_test_plugin("hiergen_test_faulty")
    pm.register(module, "faulty")
    try:
        with pytest.warns(PluginWarning, match="'faulty' failed in hiergen_weightings"):
            names = set(registry("weightings"))
        assert names == installed
        with pytest.warns(PluginWarning) as record:
            metrics = registry("metrics")
        messages = " | ".join(str(w.message) for w in record)
        assert "not a MetricSpec" in messages and "invalid metric name" in messages
        assert "bad name with spaces" not in metrics
    finally:
        pm.unregister(module)


# --- environment variables -----------------------------------------------------------------
def test_disable_autoload(fake_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIERGEN_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    assert not pm.has_plugin("good") and not pm.failures
    assert set(registry("weightings")) == BUILTIN_WEIGHTINGS


def test_select_plugins_by_name(fake_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIERGEN_PLUGINS", "good")
    pm = get_plugin_manager()  # 'broken' is not imported, so no warning
    assert pm.has_plugin("good") and not pm.failures


def test_empty_selection_loads_no_third_party(
    fake_dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIERGEN_PLUGINS", "")
    pm = get_plugin_manager()
    assert not pm.has_plugin("good") and not pm.failures
    assert pm.has_plugin("hiergen.weighting")


def test_block_plugins_by_name(fake_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIERGEN_BLOCK_PLUGINS", "broken, hiergen.weighting, torch")
    pm = get_plugin_manager()
    assert pm.has_plugin("good") and not pm.failures
    assert set(registry("weightings")) == {"context", "test-first"}  # hiergen.context stays


# --- the example distribution, installed as a third party would ----------------------------
@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --target`` of plugins/hiergen-example (from a copy: no build litter)."""
    work = tmp_path_factory.mktemp("example")
    source = work / "src"
    shutil.copytree(REPO / "plugins" / "hiergen-example", source)
    target = work / "site"
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--disable-pip-version-check", "--target", str(target), str(source),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"pip install of hiergen-example failed:\n{proc.stdout}\n{proc.stderr}")
    assert list(target.glob("hiergen_example-0.1.0.dist-info"))
    return target


@pytest.fixture
def example_installed(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(example_site))
    yield example_site
    for name in [m for m in sys.modules if m.startswith("hiergen_example")]:
        del sys.modules[name]


def test_example_plugin_found_through_its_entry_point(example_installed: Path) -> None:
    pm = get_plugin_manager()
    assert pm.has_plugin("example")
    info = pm.plugin_info("example")
    assert (info.distribution, info.version, info.builtin) == ("hiergen-example", "0.1.0", False)
    spec = get_weighting("example-mix")
    assert spec.defaults == {"mix": 0.1}
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rec = next(r for r in data["records"] if r["name"] == "example-mix")
    assert rec["kind"] == "weightings"
    assert (rec["plugin"], rec["distribution"], rec["version"]) == (
        "example", "hiergen-example", "0.1.0",
    )
    table = runner.invoke(cli, ["plugins"]).stdout
    line = next(row for row in table.splitlines() if row.startswith("example-mix"))
    assert line.split()[:5] == ["example-mix", "weightings", "example", "hiergen-example", "0.1.0"]


def test_example_plugin_in_a_fresh_process(example_site: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(example_site), str(REPO / "python")])
    for var in ("HIERGEN_DISABLE_PLUGIN_AUTOLOAD", "HIERGEN_PLUGINS", "HIERGEN_BLOCK_PLUGINS"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-m", "hiergen.cli", "plugins", "--kind", "weighting"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "example-mix" in proc.stdout and "hiergen-example" in proc.stdout
    env["HIERGEN_BLOCK_PLUGINS"] = "example"
    proc = subprocess.run(
        [sys.executable, "-m", "hiergen.cli", "plugins", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "example-mix" not in {r["name"] for r in json.loads(proc.stdout)["records"]}
