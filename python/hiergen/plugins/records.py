"""Typed records that plugins return from the ``hiergen_*`` hooks.

Each hook returns a list of these frozen records; every record has a unique ``name`` within
its kind.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import click

    from hiergen.cohort import Cohort


@dataclass(frozen=True, eq=False)
class CodeWeights:
    """Stage-2 weight tables returned by a weighting strategy, aligned with a hierarchy's codes.

    Attributes:
        weights: float64 array ``(n_strata, n_codes)``; row ``s`` is the table of stratum ``s``.
            One row means no stratification. With :data:`hiergen.demographics.N_STRATA` rows,
            row ``s`` is the sex x age-band stratum of :func:`hiergen.demographics.stratum`.
        params: the parameters used, stored with the model.
    """

    weights: npt.NDArray[np.float64]
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stratified(self) -> bool:
        return bool(self.weights.shape[0] > 1)


@dataclass(frozen=True)
class GeneratorSpec:
    """A Stage-1 generator class (implements :class:`hiergen.generators.Stage1Generator`).

    ``cls`` is the class itself or its import path ``"package.module:ClassName"``; a path keeps
    heavy dependencies (torch) unimported until the generator is used. :meth:`load` gives the class.
    """

    name: str
    cls: type | str
    description: str = ""

    def load(self) -> type:
        """The generator class, importing it first when ``cls`` is an import path."""
        if isinstance(self.cls, type):
            return self.cls
        module_name, _, attr = self.cls.partition(":")
        try:
            cls: type = getattr(importlib.import_module(module_name), attr)
            return cls
        except (ImportError, AttributeError) as exc:
            from hiergen.errors import PluginError

            raise PluginError(
                f"generator {self.name!r}: cannot import {self.cls!r}: {exc}",
                hint="check that the plugin providing it and its dependencies are installed",
            ) from exc


@dataclass(frozen=True)
class WeightingSpec:
    """A Stage-2 weighting strategy: ``build(hierarchy, cohort, **params) -> CodeWeights``.

    The strategy returns plain arrays and never touches the compiled module. A strategy that
    draws the codes itself returns weights whose ``sampler`` attribute is a Stage-2 sampler:
    ``sample_visits(categories, visit_offsets, strata, *, seed, threads)`` (the call shape of
    the compiled samplers; ``strata`` one per visit) and ``save(directory)``; the model then
    draws with it, saves it in its folder, and reads it back with ``load_sampler(directory)``.
    """

    name: str
    build: Callable[..., CodeWeights]
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    load_sampler: Callable[[Path], Any] | None = None


@dataclass(frozen=True)
class LoaderSpec:
    """A data loader: ``load(path, *, strict=False, **options) -> (Cohort, LoadReport)``."""

    name: str
    load: Callable[..., tuple[Cohort, Any]]
    description: str = ""


@dataclass(frozen=True)
class WriterSpec:
    """An output writer; ``factory(out_dir, **options)`` returns an object with
    ``write_shard(index, table) -> list[Path]`` and ``finalize(manifest) -> None``."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    extension: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """An evaluation metric: ``compute(real, synthetic, **options) -> dict[str, float]``."""

    name: str
    compute: Callable[..., Mapping[str, float]]
    description: str = ""


@dataclass(frozen=True)
class CommandSpec:
    """A CLI subcommand added to ``hiergen``."""

    name: str
    command: click.Command
    description: str = ""


__all__ = [
    "CodeWeights",
    "CommandSpec",
    "GeneratorSpec",
    "LoaderSpec",
    "MetricSpec",
    "WeightingSpec",
    "WriterSpec",
]


