"""Test plugin: a weighting ``test-first`` (all weight on each category's first code)."""

from __future__ import annotations

import numpy as np

import hiergen
from hiergen.plugins import CodeWeights, WeightingSpec


def build_first(hierarchy: hiergen.Hierarchy, cohort: hiergen.Cohort | None) -> CodeWeights:
    weights = np.zeros((1, hierarchy.n_codes))
    weights[0, np.asarray(hierarchy.offsets[:-1])] = 1.0
    return CodeWeights(weights, {})


@hiergen.hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    return [WeightingSpec("test-first", build_first, "test: first code of each category")]
