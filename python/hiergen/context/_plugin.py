"""The ``context`` Stage-2 weighting strategy, registered through ``hiergen_weightings``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hiergen.cohort import Cohort
from hiergen.context.tables import ContextTables, build_context_tables
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import CodeWeights, WeightingSpec

DEFAULTS: dict[str, Any] = {
    "min_support": 30,
    "shrinkage": 5.0,
    "min_score": 0.0,
    "max_tables": 0,
    "order": "frequency",
    "min_visits": 20,
}


@dataclass(frozen=True, eq=False)
class ContextWeights(CodeWeights):
    """Stratified base weights (the fallback) plus the context tables."""

    tables: ContextTables | None = None


def build_context(
    hierarchy: Hierarchy,
    cohort: Cohort | None,
    *,
    min_support: int = 30,
    shrinkage: float = 5.0,
    min_score: float = 0.0,
    max_tables: int = 0,
    order: str = "frequency",
    min_visits: int = 20,
) -> ContextWeights:
    """Stratified weights (``min_visits``) and context tables learned from ``cohort``."""
    from hiergen.weighting.stratified import build_stratified

    if cohort is None:
        raise ValueError("weighting 'context': needs a training cohort, got cohort=None")
    tables = build_context_tables(
        hierarchy, cohort, min_support=min_support, shrinkage=shrinkage,
        min_score=min_score, max_tables=max_tables, order=order,
    )
    base = build_stratified(hierarchy, cohort, min_visits=min_visits)
    params = {**tables.params, "min_visits": int(min_visits)}
    return ContextWeights(base.weights, params, tables)


@hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            "context",
            build_context,
            "stratified frequency, plus code tables given a code already drawn in the visit "
            "(sampled with hiergen.context)",
            dict(DEFAULTS),
        )
    ]
