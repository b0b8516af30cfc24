"""Built-in evaluation metrics, registered through the ``hiergen_metrics`` hook."""

from __future__ import annotations

from hiergen.evaluate.diversity import diversity
from hiergen.evaluate.fidelity import consecutive_r2, pair_r2, strata_r2, unigram_r2
from hiergen.evaluate.lengths import length_tv
from hiergen.evaluate.plausibility import plausibility
from hiergen.evaluate.privacy import privacy
from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import MetricSpec

BUILTIN_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("unigram", unigram_r2, "R2 of per-visit code and category prevalence"),
    MetricSpec("pairs", pair_r2, "R2 of within-visit pair prevalence (codes, categories)"),
    MetricSpec(
        "consecutive", consecutive_r2, "R2 of pair rates across consecutive visits of a patient"
    ),
    MetricSpec("lengths", length_tv, "total variation of codes/visit and visits/patient"),
    MetricSpec("strata", strata_r2, "prevalence R2 within sex x age-band strata"),
    MetricSpec("plausibility", plausibility, "share of visits with sex- or age-impossible codes"),
    MetricSpec("diversity", diversity, "distinct codes and categories in N visits"),
    MetricSpec(
        "privacy", privacy, "exact copies, distance to closest record, membership-inference AUC"
    ),
)


@hookimpl
def hiergen_metrics() -> list[MetricSpec]:
    return list(BUILTIN_METRICS)
