"""hiergen-example: a weighting strategy ``example-mix`` (frequency mixed with uniform)."""

from __future__ import annotations

import numpy as np

import hiergen
from hiergen.plugins import CodeWeights, WeightingSpec

__version__ = "0.1.0"


def build_mix(
    hierarchy: hiergen.Hierarchy, cohort: hiergen.Cohort | None, *, mix: float = 0.1
) -> CodeWeights:
    """``(1 - mix) * frequency + mix * uniform`` within each category."""
    if not 0.0 <= float(mix) <= 1.0:
        raise ValueError(f"weighting 'example-mix': parameter mix must be in [0, 1], got {mix!r}")
    if cohort is None:
        raise ValueError("weighting 'example-mix': needs a training cohort, got cohort=None")
    offsets = np.asarray(hierarchy.offsets)
    sizes = np.diff(offsets)
    counts = np.bincount(cohort.code_ids_in(hierarchy), minlength=hierarchy.n_codes)
    totals = np.repeat(np.add.reduceat(counts.astype(np.float64), offsets[:-1]), sizes)
    uniform = np.repeat(1.0 / sizes, sizes)
    freq = np.divide(counts, totals, out=uniform.copy(), where=totals > 0)
    weights = (1.0 - float(mix)) * freq + float(mix) * uniform
    return CodeWeights(weights.reshape(1, -1), {"mix": float(mix)})


@hiergen.hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            "example-mix",
            build_mix,
            "example plugin: (1 - mix) * frequency + mix * uniform",
            {"mix": 0.1},
        )
    ]
