"""The plugin system: pluggy hook specifications, records and the plugin manager."""

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

__all__ = [
    "CodeWeights",
    "CommandSpec",
    "GeneratorSpec",
    "LoaderSpec",
    "MetricSpec",
    "WeightingSpec",
    "WriterSpec",
    "hookimpl",
    "hookspec",
]
