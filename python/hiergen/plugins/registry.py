"""Look up plugin records by kind and name, with provenance and clear errors."""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hiergen.errors import PluginError
from hiergen.plugins.manager import PluginWarning, get_plugin_manager
from hiergen.plugins.records import (
    CommandSpec,
    GeneratorSpec,
    LoaderSpec,
    MetricSpec,
    WeightingSpec,
    WriterSpec,
)

#: kind -> (hook name, record type, singular noun)
KINDS: dict[str, tuple[str, type, str]] = {
    "generators": ("hiergen_generators", GeneratorSpec, "generator"),
    "weightings": ("hiergen_weightings", WeightingSpec, "weighting"),
    "loaders": ("hiergen_loaders", LoaderSpec, "loader"),
    "writers": ("hiergen_writers", WriterSpec, "writer"),
    "metrics": ("hiergen_metrics", MetricSpec, "metric"),
    "commands": ("hiergen_commands", CommandSpec, "command"),
}
_SINGULAR = {noun: kind for kind, (_, _, noun) in KINDS.items()}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$")
_HINT_LIST = "run `hiergen plugins` to list what is installed"


@dataclass(frozen=True)
class PluginRecord:
    """One record returned by a plugin, with the plugin and distribution that provided it."""

    kind: str
    name: str
    record: Any
    plugin: str
    distribution: str | None
    version: str | None
    builtin: bool

    @property
    def description(self) -> str:
        return str(getattr(self.record, "description", "") or "")

    @property
    def provider(self) -> str:
        """``plugin 'x' (distribution d 1.0)``: who provides the record, for messages."""
        if not self.distribution:
            return f"plugin {self.plugin!r}"
        return f"plugin {self.plugin!r} (distribution {self.distribution} {self.version or '?'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "description": self.description,
        }


def normalise_kind(kind: str) -> str:
    """``"weighting"`` or ``"weightings"`` -> ``"weightings"``; ``PluginError`` otherwise."""
    key = kind.strip().lower()
    if key in KINDS:
        return key
    if key in _SINGULAR:
        return _SINGULAR[key]
    raise PluginError(
        f"unknown plugin kind {kind!r}; available: {', '.join(KINDS)}", hint=_HINT_LIST
    )


def _warn(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=4)


def plugin_records(kinds: Iterable[str] | None = None) -> list[PluginRecord]:
    """Every record of the given kinds (all kinds by default), duplicates included.

    Each plugin's hook is called on its own, so a plugin that raises, returns something
    other than a list, or returns a malformed record is reported as a :class:`PluginWarning`
    and skipped while the others keep working.
    """
    pm = get_plugin_manager()
    selected = list(KINDS) if kinds is None else [normalise_kind(k) for k in kinds]
    out: list[PluginRecord] = []
    for kind in selected:
        hook_name, record_type, noun = KINDS[kind]
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            info = pm.plugin_info(impl.plugin_name)
            where = f"plugin {impl.plugin_name!r}"
            try:
                result = impl.function()
            except Exception as exc:
                _warn(f"hiergen {where} failed in {hook_name} and is skipped: {exc!r}")
                continue
            if result is None:
                continue
            if not isinstance(result, (list, tuple)):
                _warn(f"hiergen {where}: {hook_name} returned {type(result).__name__}, not a list")
                continue
            for item in result:
                if not isinstance(item, record_type):
                    _warn(
                        f"hiergen {where}: {hook_name} returned {item!r}, "
                        f"not a {record_type.__name__}; skipped"
                    )
                    continue
                name = getattr(item, "name", None)
                if not isinstance(name, str) or not _NAME_RE.match(name):
                    _warn(f"hiergen {where}: invalid {noun} name {name!r}; skipped")
                    continue
                out.append(
                    PluginRecord(
                        kind, name, item, impl.plugin_name, info.distribution, info.version,
                        info.builtin,
                    )
                )
    return out


def registry(kind: str) -> dict[str, Any]:
    """``{name: record}`` of one kind (``"weightings"``, ``"generators"``, ...), sorted by name.

    Raises :class:`PluginError` naming both providers when two plugins claim one name.
    """
    kind = normalise_kind(kind)
    noun = KINDS[kind][2]
    seen: dict[str, PluginRecord] = {}
    for rec in plugin_records([kind]):
        first = seen.get(rec.name)
        if first is not None:
            raise PluginError(
                f"{noun} {rec.name!r} is provided twice: by {first.provider} "
                f"and by {rec.provider}",
                hint="uninstall one of them, or block one with "
                "HIERGEN_BLOCK_PLUGINS=<plugin name>",
            )
        seen[rec.name] = rec
    return {name: seen[name].record for name in sorted(seen)}


def get(kind: str, name: str) -> Any:
    """The record ``name`` of ``kind``; unknown names raise :class:`PluginError` listing those
    available."""
    kind = normalise_kind(kind)
    noun = KINDS[kind][2]
    records = registry(kind)
    try:
        return records[name]
    except KeyError:
        pass
    available = ", ".join(records) or "none installed"
    close = difflib.get_close_matches(name, list(records), n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise PluginError(
        f"unknown {noun} {name!r}{guess}; available: {available}", hint=_HINT_LIST
    ) from None


def get_generator(name: str) -> GeneratorSpec:
    """The Stage-1 generator record ``name``."""
    spec: GeneratorSpec = get("generators", name)
    return spec


def get_weighting(name: str) -> WeightingSpec:
    """The Stage-2 weighting strategy record ``name``."""
    spec: WeightingSpec = get("weightings", name)
    return spec


def get_loader(name: str) -> LoaderSpec:
    """The data loader record ``name``."""
    spec: LoaderSpec = get("loaders", name)
    return spec


def get_writer(name: str) -> WriterSpec:
    """The output writer record ``name``."""
    spec: WriterSpec = get("writers", name)
    return spec


def get_metric(name: str) -> MetricSpec:
    """The evaluation metric record ``name``."""
    spec: MetricSpec = get("metrics", name)
    return spec


def commands() -> dict[str, CommandSpec]:
    """``{name: CommandSpec}`` of every CLI subcommand."""
    return registry("commands")


__all__ = [
    "KINDS",
    "PluginRecord",
    "commands",
    "get",
    "get_generator",
    "get_loader",
    "get_metric",
    "get_weighting",
    "get_writer",
    "normalise_kind",
    "plugin_records",
    "registry",
]
