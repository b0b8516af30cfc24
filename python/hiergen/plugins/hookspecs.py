"""Hook specifications of the ``hiergen`` plugin project.

Every hook takes no argument and returns a list of typed records (see
:mod:`hiergen.plugins.records`). A plugin implements any subset of them with
:data:`hiergen.hookimpl`; names must be unique within a kind across all installed plugins.
"""

from __future__ import annotations

from hiergen.plugins.markers import hookspec
from hiergen.plugins.records import (
    CommandSpec,
    GeneratorSpec,
    LoaderSpec,
    MetricSpec,
    WeightingSpec,
    WriterSpec,
)


@hookspec
def hiergen_generators() -> list[GeneratorSpec]:  # type: ignore[empty-body]
    """Stage-1 generators: classes implementing :class:`hiergen.generators.Stage1Generator`."""


@hookspec
def hiergen_weightings() -> list[WeightingSpec]:  # type: ignore[empty-body]
    """Stage-2 weighting strategies: ``build(hierarchy, cohort, **params) -> CodeWeights``.

    A strategy returns plain arrays aligned with ``hierarchy.codes`` and never imports the
    compiled module.
    """


@hookspec
def hiergen_loaders() -> list[LoaderSpec]:  # type: ignore[empty-body]
    """Data loaders: ``load(path, *, strict=False, **options) -> (Cohort, LoadReport)``."""


@hookspec
def hiergen_writers() -> list[WriterSpec]:  # type: ignore[empty-body]
    """Output writers: ``factory(out_dir, **options)`` returns a shard writer."""


@hookspec
def hiergen_metrics() -> list[MetricSpec]:  # type: ignore[empty-body]
    """Evaluation metrics: ``compute(real, synthetic, **options) -> dict[str, float]``."""


@hookspec
def hiergen_commands() -> list[CommandSpec]:  # type: ignore[empty-body]
    """Subcommands added to the ``hiergen`` command line (click commands)."""
