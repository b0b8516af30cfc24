"""The plugin system: pluggy hook specifications, records, the plugin manager and registry.

Look-ups: :func:`registry` (``{name: record}`` of a kind), :func:`get_generator`,
:func:`get_weighting`, :func:`get_loader`, :func:`get_writer`, :func:`get_metric`,
:func:`commands`. Unknown names and duplicates raise :class:`hiergen.errors.PluginError`.
"""

from hiergen.plugins.manager import (
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    PluginWarning,
    get_plugin_manager,
    reset_plugin_manager,
)
from hiergen.plugins.markers import hookimpl, hookspec
from hiergen.plugins.records import (
    CodeWeights,
    CommandSpec,
    GeneratorSpec,
    LoaderSpec,
    MetricSpec,
    WeightingSpec,
    WriterSpec,
)
from hiergen.plugins.registry import (
    PluginRecord,
    commands,
    get_generator,
    get_loader,
    get_metric,
    get_weighting,
    get_writer,
    plugin_records,
    registry,
)

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "CodeWeights",
    "CommandSpec",
    "GeneratorSpec",
    "LoaderSpec",
    "MetricSpec",
    "PluginRecord",
    "PluginWarning",
    "WeightingSpec",
    "WriterSpec",
    "commands",
    "get_generator",
    "get_loader",
    "get_metric",
    "get_plugin_manager",
    "get_weighting",
    "get_writer",
    "hookimpl",
    "hookspec",
    "plugin_records",
    "registry",
    "reset_plugin_manager",
]
