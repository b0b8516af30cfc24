"""Shared fixtures: the real data sets of ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


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
