"""The hand-written python/hiergen/_core.pyi stays true to the compiled module."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUB = REPO / "python" / "hiergen" / "_core.pyi"


# pybind11 classes have a metaclass that stubs do not spell out.
ALLOWLIST = "hiergen._core.CategoryIndex\nhiergen._core.ContextIndex\n"


def test_stubtest_agrees_with_the_compiled_module(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy (for mypy.stubtest) is not installed")
    pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
    # Check the stub alone: a bare package holding only _core.pyi, so that type errors
    # elsewhere in hiergen do not stop stubtest (mypy checks those separately).
    stubs = tmp_path / "stubs" / "hiergen"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    shutil.copy(STUB, stubs / "_core.pyi")
    allowlist = tmp_path / "stubtest-allowlist.txt"
    allowlist.write_text(ALLOWLIST)
    env = dict(os.environ, MYPYPATH=str(tmp_path / "stubs"))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "hiergen._core", "--ignore-missing-stub",
         "--allowlist", str(allowlist), "--ignore-unused-allowlist",
         "--mypy-config-file", str(REPO / "pyproject.toml")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stub_names_match_runtime() -> None:
    core = pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
    cls = core.CategoryIndex
    for name in ("sample", "sample_visits", "with_weights", "n_categories", "n_codes",
                 "n_strata", "zero_weight", "offsets", "weights"):
        assert hasattr(cls, name), name
        assert f"def {name}(" in STUB.read_text()


def _params(fn: ast.FunctionDef) -> tuple[list[str], list[str], int, int]:
    a = fn.args
    return ([p.arg for p in a.posonlyargs + a.args], [p.arg for p in a.kwonlyargs],
            len(a.defaults), sum(d is not None for d in a.kw_defaults))


def _runtime_signature(obj: object) -> ast.FunctionDef:
    """pybind11 writes the signature as the docstring's first line; parse it as a def."""
    first = (getattr(obj, "__doc__", None) or "").lstrip().splitlines()[0]
    head = first.rsplit(" -> ", 1)[0]
    tree = ast.parse(f"def {head}: pass")
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    return node


def test_stub_signatures_match_runtime_docstrings() -> None:
    # stubtest cannot see pybind11 signatures, so compare names, keyword-only parameters
    # and defaults with the signatures pybind11 writes into the docstrings.
    core = pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
    tree = ast.parse(STUB.read_text())
    checked = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            assert _params(node) == _params(_runtime_signature(getattr(core, node.name)))
            checked += 1
        elif isinstance(node, ast.ClassDef):
            cls = getattr(core, node.name)
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and not fn.decorator_list:
                    runtime = _runtime_signature(getattr(cls, fn.name))
                    assert _params(fn) == _params(runtime), f"{node.name}.{fn.name}"
                    checked += 1
    assert checked >= 5
