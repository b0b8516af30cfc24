"""hiergen: a two-stage synthetic EHR generator.

Stage 1 generates visits as ICD-9-CM category sequences conditioned on age and sex; Stage 2
draws a full code inside each category with a compiled alias-method sampler.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from hiergen.cohort import Cohort
from hiergen.errors import DataError, HiergenError, ModelError, PluginError
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.markers import hookimpl

try:
    __version__ = version("hiergen")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "CategoryIndex",
    "HiergenModel",
    "Cohort",
    "DataError",
    "HiergenError",
    "Hierarchy",
    "ModelError",
    "PluginError",
    "__version__",
    "hookimpl",
    "run_job",
]

# Heavier parts, imported on first use: name -> (module, attribute).
_LAZY = {
    "HiergenModel": ("hiergen.model", "HiergenModel"),
    "run_job": ("hiergen.generation.job", "run_job"),
}


def __getattr__(name: str) -> Any:
    # The compiled module is loaded on first use so that pure-Python parts import without it.
    if name == "CategoryIndex":
        from hiergen._compiled import compiled_module

        return compiled_module().CategoryIndex
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'hiergen' has no attribute {name!r}")
