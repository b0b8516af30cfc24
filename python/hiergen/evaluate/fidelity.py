"""Fidelity metrics: unigram, pair, consecutive-visit pair and per-stratum prevalence R2."""

from __future__ import annotations

from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.demographics import N_STRATA
from hiergen.evaluate._stats import aligned_rates, r2
from hiergen.evaluate._visits import PAIR_BASE, VisitView, unique_counts, view

LEVELS = ("code", "category")


def _level_r2(real: VisitView, syn: VisitView, level: str, kind: str) -> float:
    if kind == "unigram":
        ka, ca = real.counts(level)
        kb, cb = syn.counts(level)
        na, nb = real.n_visits, syn.n_visits
    elif kind == "pair":
        ka, ca = real.pair_counts(level)
        kb, cb = syn.pair_counts(level)
        na, nb = real.n_visits, syn.n_visits
    else:
        ka, ca = real.consecutive_counts(level)
        kb, cb = syn.consecutive_counts(level)
        na, nb = real.transitions[0].size, syn.transitions[0].size
    return r2(*aligned_rates(ka, ca, na, kb, cb, nb))


def unigram_r2(real: Cohort, synthetic: Cohort, **_: Any) -> dict[str, float]:
    """R2 of per-visit prevalence of each code (and category), over the union of both sets."""
    rv, sv = view(real), view(synthetic)
    return {f"{lv}_unigram_r2": _level_r2(rv, sv, lv, "unigram") for lv in LEVELS}


def pair_r2(real: Cohort, synthetic: Cohort, **_: Any) -> dict[str, float]:
    """R2 of per-visit prevalence of unordered pairs of distinct codes (and categories)."""
    rv, sv = view(real), view(synthetic)
    return {f"{lv}_pair_r2": _level_r2(rv, sv, lv, "pair") for lv in LEVELS}


def consecutive_r2(
    real: Cohort, synthetic: Cohort, *, min_transitions: int = 10, **_: Any
) -> dict[str, float]:
    """R2 of the rate of ordered pairs (code in a visit, code in the patient's next visit).

    Empty when either cohort has fewer than ``min_transitions`` consecutive-visit pairs (one
    visit per patient, as in NHDS).
    """
    rv, sv = view(real), view(synthetic)
    if min(rv.transitions[0].size, sv.transitions[0].size) < min_transitions:
        return {}
    return {f"{lv}_consecutive_r2": _level_r2(rv, sv, lv, "consecutive") for lv in LEVELS}


def strata_r2(
    real: Cohort, synthetic: Cohort, *, min_stratum_visits: int = 50, **_: Any
) -> dict[str, float]:
    """Prevalence R2 within each sex x age-band stratum, averaged weighted by real visits.

    Strata with fewer than ``min_stratum_visits`` visits on either side are left out.
    """
    rv, sv = view(real), view(synthetic)
    out: dict[str, float] = {}
    for lv in LEVELS:
        ra, rb = _stratum_rates(rv, lv), _stratum_rates(sv, lv)
        n_a = np.bincount(rv.strata, minlength=N_STRATA)
        n_b = np.bincount(sv.strata, minlength=N_STRATA)
        scores, weights = [], []
        for s in np.flatnonzero((n_a >= min_stratum_visits) & (n_b >= min_stratum_visits)):
            value = r2(*aligned_rates(*ra[s], int(n_a[s]), *rb[s], int(n_b[s])))
            if np.isfinite(value):
                scores.append(value)
                weights.append(n_a[s])
        out[f"{lv}_strata_r2"] = (
            float(np.average(scores, weights=weights)) if scores else float("nan")
        )
    return out


def _stratum_rates(v: VisitView, level: str) -> list[tuple[np.ndarray, np.ndarray]]:
    items, offsets = v.level(level)
    st = np.repeat(v.strata.astype(np.int64), np.diff(offsets))
    keys, counts = unique_counts(st * PAIR_BASE + items)
    bounds = np.searchsorted(keys, np.arange(N_STRATA + 1, dtype=np.int64) * PAIR_BASE)
    return [
        (keys[bounds[s] : bounds[s + 1]] % PAIR_BASE, counts[bounds[s] : bounds[s + 1]])
        for s in range(N_STRATA)
    ]
