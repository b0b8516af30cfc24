"""The hiergen plugin manager: built-ins registered explicitly, third-party plugins from the
``hiergen`` entry-point group.

Environment variables (read when the manager is first built, see :func:`get_plugin_manager`):

``HIERGEN_DISABLE_PLUGIN_AUTOLOAD``
    ``1`` (or ``true``/``yes``/``on``): load no entry-point plugin, only the built-ins.
``HIERGEN_PLUGINS``
    Comma-separated entry-point names: load only these third-party plugins (an empty value
    loads none). Built-ins are always loaded unless blocked.
``HIERGEN_BLOCK_PLUGINS``
    Comma-separated plugin names never to load, entry-point names or built-in names such as
    ``hiergen.weighting``.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import types
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points, packages_distributions
from importlib.metadata import version as dist_version
from typing import Any

import pluggy

from hiergen.errors import PluginError
from hiergen.plugins import hookspecs
from hiergen.plugins.markers import PROJECT_NAME

logger = logging.getLogger(__name__)

#: Entry-point group that third-party distributions use to register a plugin.
ENTRY_POINT_GROUP = PROJECT_NAME

#: Built-in plugin modules, registered explicitly in this order (name: module minus ``._plugin``).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "hiergen.loaders._plugin",
    "hiergen.generators._plugin",
    "hiergen.weighting._plugin",
    "hiergen.context._plugin",
    "hiergen.writers._plugin",
    "hiergen.evaluate._plugin",
    "hiergen.cli._plugin",
)

ENV_DISABLE_AUTOLOAD = "HIERGEN_DISABLE_PLUGIN_AUTOLOAD"
ENV_SELECT = "HIERGEN_PLUGINS"
ENV_BLOCK = "HIERGEN_BLOCK_PLUGINS"

_TRUE = frozenset({"1", "true", "yes", "on"})


class PluginWarning(UserWarning):
    """A plugin failed to import, to register or to answer a hook; the others keep working."""


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin comes from."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool = False
    module: str | None = None


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded: its entry point and the exception, as text."""

    name: str
    distribution: str | None
    version: str | None
    error: str


def builtin_name(module: str) -> str:
    """Plugin name of a built-in module: ``hiergen.weighting._plugin`` -> ``hiergen.weighting``."""
    return module.removesuffix("._plugin")


def _split_env(value: str | None) -> list[str]:
    if value is None:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


@lru_cache(maxsize=1)
def _module_distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def _hiergen_version() -> str:
    from hiergen import __version__

    return __version__


class HiergenPluginManager(pluggy.PluginManager):
    """A :class:`pluggy.PluginManager` that remembers which distribution provided each plugin
    and which plugins failed to load."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []

    # --- registration ---------------------------------------------------------------------
    def register(
        self,
        plugin: Any,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
        builtin: bool = False,
    ) -> str | None:
        """Register ``plugin``; provenance is derived from its module unless given."""
        registered = super().register(plugin, name)
        if registered is not None:
            module = _module_of(plugin)
            if distribution is None and not builtin:
                distribution, version = _distribution_of_module(module)
            self._info[registered] = PluginInfo(
                registered, distribution, version, builtin=builtin, module=module
            )
        return registered

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin, name)
        if name is not None:
            self._info.pop(name, None)
        return removed

    def plugin_info(self, name: str) -> PluginInfo:
        """Provenance of the registered plugin ``name``."""
        info = self._info.get(name)
        if info is None:
            plugin = self.get_plugin(name)
            module = _module_of(plugin) if plugin is not None else None
            dist, ver = _distribution_of_module(module)
            info = PluginInfo(name, dist, ver, module=module)
        return info

    def _fail(
        self, name: str, dist: str | None, ver: str | None, what: str, exc: BaseException
    ) -> None:
        where = f" (distribution {dist} {ver})" if dist else ""
        message = f"hiergen plugin {name!r}{where} failed to {what} and is skipped: {exc!r}"
        self.failures.append(PluginFailure(name, dist, ver, repr(exc)))
        logger.debug(message, exc_info=exc)
        warnings.warn(message, PluginWarning, stacklevel=3)

    def load_builtins(self, modules: Iterable[str] = BUILTIN_PLUGINS) -> None:
        """Import and register each built-in plugin module (a failure warns and is skipped)."""
        version = _hiergen_version()
        for module_name in modules:
            name = builtin_name(module_name)
            if self.is_blocked(name) or self.has_plugin(name):
                continue
            try:
                module = importlib.import_module(module_name)
                self.register(module, name, distribution="hiergen", version=version, builtin=True)
            except Exception as exc:
                self._fail(name, "hiergen", version, "load", exc)

    def load_entrypoints(
        self, group: str = ENTRY_POINT_GROUP, *, select: Iterable[str] | None = None
    ) -> int:
        """Load third-party plugins of the entry-point ``group``; return how many registered.

        Unlike :meth:`pluggy.PluginManager.load_setuptools_entrypoints`, a plugin that fails to
        import or register is reported as a :class:`PluginWarning` and the others still load.
        """
        wanted = None if select is None else set(select)
        seen: dict[str, str] = {}
        count = 0
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else None
            ver = ep.dist.version if ep.dist is not None else None
            if ep.name in seen:
                if seen[ep.name] != ep.value:
                    self._fail(
                        ep.name,
                        dist,
                        ver,
                        f"register (entry point name already used by {seen[ep.name]!r})",
                        PluginError(f"duplicate entry point {ep.name!r} = {ep.value!r}"),
                    )
                continue
            seen[ep.name] = ep.value
            if wanted is not None and ep.name not in wanted:
                logger.debug("plugin %r not selected by %s", ep.name, ENV_SELECT)
                continue
            if self.is_blocked(ep.name) or self.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(ep.name, dist, ver, "import", exc)
                continue
            try:
                self.register(plugin, ep.name, distribution=dist, version=ver)
            except Exception as exc:
                self._fail(ep.name, dist, ver, "register", exc)
                continue
            count += 1
        return count


def _module_of(plugin: Any) -> str | None:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    module = getattr(plugin, "__module__", None) or type(plugin).__module__
    return str(module) if module else None


def _distribution_of_module(module: str | None) -> tuple[str | None, str | None]:
    if not module:
        return None, None
    top = module.split(".")[0]
    dists = _module_distributions().get(top)
    if not dists:
        return None, None
    try:
        return dists[0], dist_version(dists[0])
    except Exception:  # pragma: no cover - broken metadata
        return dists[0], None


_manager: HiergenPluginManager | None = None
_lock = threading.RLock()


def build_plugin_manager(environ: Mapping[str, str] | None = None) -> HiergenPluginManager:
    """A fresh manager configured from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    pm = HiergenPluginManager()
    for name in _split_env(env.get(ENV_BLOCK)):
        pm.set_blocked(name)
    pm.load_builtins()
    if env.get(ENV_DISABLE_AUTOLOAD, "").strip().lower() in _TRUE:
        logger.debug("plugin autoloading disabled by %s", ENV_DISABLE_AUTOLOAD)
    else:
        select = _split_env(env.get(ENV_SELECT)) if ENV_SELECT in env else None
        pm.load_entrypoints(select=select)
    return pm


def get_plugin_manager() -> HiergenPluginManager:
    """The process-wide plugin manager, built on first use and cached."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = build_plugin_manager()
        return _manager


def reset_plugin_manager() -> None:
    """Forget the cached manager (the next :func:`get_plugin_manager` rebuilds it)."""
    global _manager
    with _lock:
        _manager = None
    _module_distributions.cache_clear()


__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "ENV_BLOCK",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_SELECT",
    "HiergenPluginManager",
    "PluginFailure",
    "PluginInfo",
    "PluginWarning",
    "build_plugin_manager",
    "get_plugin_manager",
    "reset_plugin_manager",
]
