"""The one place that imports the compiled extension, with a hint when it is missing."""

from __future__ import annotations

from types import ModuleType


def compiled_module() -> ModuleType:
    """``hiergen._core`` (``ImportError`` with a hint when the extension is not built)."""
    try:
        from hiergen import _core
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "hiergen._core, the compiled extension, is missing: install hiergen with "
            "`pip install .` (a C++17 compiler is needed) rather than importing the source tree"
        ) from exc
    return _core
