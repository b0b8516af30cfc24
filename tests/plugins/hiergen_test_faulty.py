"""Test plugin whose hooks misbehave: one raises, one returns records of the wrong type."""

from __future__ import annotations

import hiergen
from hiergen.plugins import MetricSpec, WeightingSpec


@hiergen.hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    raise RuntimeError("faulty plugin exploded")


@hiergen.hookimpl
def hiergen_metrics() -> list[MetricSpec]:
    return ["not a record", MetricSpec("bad name with spaces", lambda r, s: {})]  # type: ignore[list-item]
