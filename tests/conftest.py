"""Shared fixtures: the real data sets of ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _write_mimic_fixtures() -> None:
    spec = importlib.util.spec_from_file_location(
        "hiergen_test_mimic_fixtures", FIXTURES / "mimic_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_mimic_fixtures(FIXTURES)


# The MIMIC-layout fixtures are written before any test module is collected (see
# tests/fixtures/mimic_fixtures.py for why they are not committed).
_write_mimic_fixtures()


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data set {path} is absent (it lives in ../shared/data, not in the repo)")
    return path


@pytest.fixture(scope="session")
def nhds_path() -> Path:
    return _shared("nhds2010") / "NHDS10.PU.txt.bz2"


@pytest.fixture(scope="session")
def mimic3_demo_dir() -> Path:
    return _shared("mimic3_demo")


@pytest.fixture(scope="session")
def synpuf_dir() -> Path:
    return _shared("synpuf_fixture")


@pytest.fixture
def builtin_plugins_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only hiergen's built-in plugins (entry points not loaded), in a fresh plugin manager."""
    from hiergen.plugins import reset_plugin_manager

    for var in ("HIERGEN_PLUGINS", "HIERGEN_BLOCK_PLUGINS", "HIERGEN_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HIERGEN_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugin_manager()
    yield
    reset_plugin_manager()
