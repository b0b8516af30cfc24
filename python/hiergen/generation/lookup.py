"""Plugin look-ups by kind and name, with the built-in records always reachable.

Built-in records (``markov``, ``frequency``, ``meds``, the loaders) are read from their
area's ``_plugin`` module directly; other names go through the plugin registry.
"""

from __future__ import annotations

import importlib
from typing import Any

from hiergen.errors import PluginError

#: kind -> (built-in module, hook function name)
_BUILTINS = {
    "generators": ("hiergen.generators._plugin", "hiergen_generators"),
    "weightings": ("hiergen.weighting._plugin", "hiergen_weightings"),
    "loaders": ("hiergen.loaders._plugin", "hiergen_loaders"),
    "writers": ("hiergen.writers._plugin", "hiergen_writers"),
}


def builtin_records(kind: str) -> dict[str, Any]:
    module_name, hook = _BUILTINS[kind]
    module = importlib.import_module(module_name)
    return {rec.name: rec for rec in getattr(module, hook)()}


def lookup(kind: str, name: str) -> Any:
    """The record ``name`` of ``kind`` (``"generators"``, ``"weightings"``, ``"loaders"``,
    ``"writers"``); :class:`PluginError` listing what is available when unknown.

    Built-in names are answered without building the plugin manager: importing every
    installed plugin (torch for some) would cost each worker process seconds.
    """
    builtins = builtin_records(kind)
    if name in builtins:
        return builtins[name]
    from hiergen.plugins.registry import get, registry

    try:
        return get(kind, name)
    except PluginError as exc:
        available = sorted(set(registry(kind)) | set(builtins))
        raise PluginError(
            f"unknown {kind.rstrip('s')} {name!r}; available: {', '.join(available)}",
            hint=exc.hint,
        ) from None


def available(kind: str) -> list[str]:
    """Names of ``kind`` (registered plugins and built-ins)."""
    from hiergen.plugins.registry import registry

    return sorted(set(registry(kind)) | set(builtin_records(kind)))
