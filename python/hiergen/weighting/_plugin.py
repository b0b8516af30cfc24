"""Built-in Stage-2 weighting strategies, registered through the ``hiergen_weightings`` hook."""

from __future__ import annotations

from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import WeightingSpec
from hiergen.weighting.frequency import build_frequency, build_tempered
from hiergen.weighting.smoothed import build_smoothed
from hiergen.weighting.stratified import build_stratified
from hiergen.weighting.uniform import build_uniform


@hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec("uniform", build_uniform, "every code of a category equally likely"),
        WeightingSpec(
            "frequency", build_frequency, "share of the category's training count (unseen: 0)"
        ),
        WeightingSpec(
            "smoothed",
            build_smoothed,
            "frequency plus a prior per code, so valid unseen codes keep some weight",
            {"prior": 0.5, "method": "additive"},
        ),
        WeightingSpec(
            "tempered", build_tempered, "training count ** alpha (flatter for alpha < 1)",
            {"alpha": 0.5},
        ),
        WeightingSpec(
            "stratified",
            build_stratified,
            "frequency per sex x age band; pooled where a stratum has < min_visits visits",
            {"min_visits": 20, "prior": 0.0},
        ),
    ]
