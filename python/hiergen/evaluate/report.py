"""The evaluation report: every metric for the synthetic data beside its ceiling and floor.

* ceiling - a sample of the training data, the size of the synthetic set, scored the same way
  (privacy metrics then use the remaining training data); without training data, one half of
  the real data scored against the other half;
* floor - independent codes at their marginal rates with the real visits' sizes
  (:func:`hiergen.evaluate.baselines.independent_codes`);
* gap closed - ``(value - floor) / (ceiling - floor)`` for the fidelity metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.errors import PluginError
from hiergen.evaluate.baselines import independent_codes, resample_split
from hiergen.plugins.records import MetricSpec

logger = logging.getLogger(__name__)

ROWS = ("synthetic", "ceiling", "floor")


#: Suffixes of a metric's companion value: the same quantity measured on the real data.
COMPANION_SUFFIXES = ("_real", "_heldout")


def is_gap_metric(key: str) -> bool:
    """Metrics for which the share of the floor-to-ceiling gap closed is meaningful (R2)."""
    return key.endswith("_r2")


def companion_of(key: str) -> str | None:
    """The key a companion value belongs to (``x_real`` -> ``x``), or None."""
    for suffix in COMPANION_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return None


@dataclass(frozen=True)
class MetricRow:
    """One metric value with its two reference points."""

    key: str
    metric: str
    value: float
    ceiling: float = math.nan
    floor: float = math.nan
    real: float = math.nan

    @property
    def gap_closed(self) -> float:
        """Share of the floor-to-ceiling gap closed (NaN where not meaningful)."""
        if not is_gap_metric(self.key):
            return math.nan
        span = self.ceiling - self.floor
        if not (math.isfinite(span) and math.isfinite(self.value)) or abs(span) < 1e-9:
            return math.nan
        return (self.value - self.floor) / span


@dataclass
class EvaluationReport:
    """Metric values of the synthetic, ceiling and floor rows, plus what the plots need."""

    values: dict[str, dict[str, float]]
    metric_of: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> list[MetricRow]:
        syn = self.values["synthetic"]
        rows = []
        for key in syn:
            main = companion_of(key)
            if main is not None and main in syn:
                continue
            real = next(
                (syn[key + s] for s in COMPANION_SUFFIXES if key + s in syn), math.nan
            )
            rows.append(
                MetricRow(
                    key,
                    self.metric_of[key],
                    syn[key],
                    self.values.get("ceiling", {}).get(key, math.nan),
                    self.values.get("floor", {}).get(key, math.nan),
                    real,
                )
            )
        return rows

    def __getitem__(self, key: str) -> MetricRow:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"metric value {key!r} is not in the report")

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "metrics": [
                {
                    "key": r.key, "metric": r.metric, "value": _json_num(r.value),
                    "real": _json_num(r.real), "ceiling": _json_num(r.ceiling),
                    "floor": _json_num(r.floor), "gap_closed": _json_num(r.gap_closed),
                }
                for r in self.rows
            ],
        }


def _json_num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def available_metrics() -> dict[str, MetricSpec]:
    """Built-in metrics plus those of installed plugins (``hiergen_metrics`` hook)."""
    from hiergen.evaluate._plugin import BUILTIN_METRICS

    specs = {m.name: m for m in BUILTIN_METRICS}
    try:
        from hiergen.plugins.registry import registry

        for name, spec in registry("metrics").items():
            specs.setdefault(name, spec)
    except ImportError:  # pragma: no cover - plugin machinery missing
        pass
    return specs


def evaluate(
    real: Cohort,
    synthetic: Cohort,
    *,
    train: Cohort | None = None,
    metrics: Iterable[str] | None = None,
    seed: int = 0,
    baselines: bool = True,
    plots: bool = True,
    **options: Any,
) -> EvaluationReport:
    """Score ``synthetic`` against ``real`` (held-out real data), with ceiling and floor rows.

    Args:
        real: real visits the generator never saw (the reference).
        synthetic: the generated cohort.
        train: the generator's training data; enables privacy metrics and a same-size ceiling.
        metrics: names of metrics to compute (all available by default).
        seed: seed of every random choice (samples, floor draws).
        baselines: compute the ceiling and floor rows.
        plots: keep prevalence and length data for the HTML plots.
        options: passed to every metric (e.g. ``privacy_sample``, ``min_stratum_visits``).
    """
    if real.n_visits == 0 or synthetic.n_visits == 0:
        raise ValueError(
            f"evaluate: both cohorts need visits (real: {real.n_visits}, "
            f"synthetic: {synthetic.n_visits})"
        )
    specs = available_metrics()
    chosen = list(specs) if metrics is None else list(metrics)
    unknown = [m for m in chosen if m not in specs]
    if unknown:
        raise PluginError(
            f"metrics: unknown metric {unknown[0]!r}; available: {', '.join(sorted(specs))}"
        )
    started = time.perf_counter()
    cases: dict[str, tuple[Cohort, Cohort, Cohort | None]] = {
        "synthetic": (real, synthetic, train)
    }
    info: dict[str, Any] = {
        "real_visits": real.n_visits, "real_patients": real.n_patients,
        "synthetic_visits": synthetic.n_visits, "synthetic_patients": synthetic.n_patients,
        "train_visits": train.n_visits if train is not None else None, "seed": seed,
    }
    if baselines:
        if train is not None and train.n_patients > 1:
            sample, rest = resample_split(train, synthetic.n_visits, seed=seed)
            cases["ceiling"] = (real, sample, rest)
            info["ceiling"] = f"training sample of {sample.n_visits} visits vs real"
            floor_source = train
        else:
            half_a, half_b = resample_split(real, real.n_visits // 2, seed=seed)
            cases["ceiling"] = (half_b, half_a, None)
            info["ceiling"] = f"real half ({half_a.n_visits} visits) vs other half"
            floor_source = real
        cases["floor"] = (real, independent_codes(floor_source, real, seed=seed + 1), train)
        info["floor"] = "independent codes at marginal rates, real visit sizes"
    values: dict[str, dict[str, float]] = {}
    metric_of: dict[str, str] = {}
    for row, (ref, syn, tr) in cases.items():
        values[row] = {}
        for name in chosen:
            t0 = time.perf_counter()
            result = specs[name].compute(ref, syn, train=tr, seed=seed, **options)
            for key, value in result.items():
                values[row][key] = float(value)
                metric_of.setdefault(key, name)
            logger.debug("metric %s on %s: %.2f s", name, row, time.perf_counter() - t0)
    info["seconds"] = round(time.perf_counter() - started, 2)
    report = EvaluationReport(values, metric_of, info)
    if plots:
        report.plots = plot_data(real, synthetic)
    logger.info("evaluated %d metric values in %.1f s", len(values["synthetic"]), info["seconds"])
    return report


def plot_data(real: Cohort, synthetic: Cohort) -> dict[str, Any]:
    """Prevalence pairs (code and category level) and length histograms for the plots."""
    from hiergen.evaluate._stats import aligned_rates
    from hiergen.evaluate._visits import view

    rv, sv = view(real), view(synthetic)
    out: dict[str, Any] = {}
    for level in ("code", "category"):
        out[f"{level}_prevalence"] = aligned_rates(
            *rv.counts(level), real.n_visits, *sv.counts(level), synthetic.n_visits
        )
    for name, a, b in (
        ("codes_per_visit", np.diff(rv.codes[1]), np.diff(sv.codes[1])),
        ("visits_per_patient", real.visits_per_patient, synthetic.visits_per_patient),
    ):
        size = int(max(a.max(initial=0), b.max(initial=0))) + 1
        out[name] = (
            np.bincount(a, minlength=size) / max(a.size, 1),
            np.bincount(b, minlength=size) / max(b.size, 1),
        )
    return out


def as_mapping(report: EvaluationReport) -> Mapping[str, float]:
    """``{key: synthetic value}``."""
    return dict(report.values["synthetic"])
