"""Privacy metrics against the training data.

* exact-copy rate: synthetic visits (and patients) whose code set equals some training visit's,
  beside the same rate for the held-out real visits (many short visits repeat by chance);
* distance to closest record (DCR): Jaccard distance of a visit's code set to the nearest
  training visit, synthetic -> train against held-out -> train;
* membership-inference AUC: training members vs held-out non-members, scored by their distance
  to the nearest synthetic visit (0.5: the synthetic data does not tell them apart).

Nearest neighbours are exact, found through an inverted index (code -> visits) and dense
per-chunk intersection counts, on a random sample of queries (``privacy_sample``).
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.evaluate._stats import auc
from hiergen.evaluate._visits import I64, view

F64 = npt.NDArray[np.float64]
#: Intersection counts held at once per chunk (query visits x reference visits).
CHUNK_CELLS = 1 << 22


def copy_rate(query: Cohort, reference: Cohort) -> float:
    """Share of ``query`` visits whose code set equals the code set of a ``reference`` visit."""
    if query.n_visits == 0:
        return float("nan")
    return float(np.isin(view(query).code_hashes, view(reference).code_hashes).mean())


def patient_copy_rate(query: Cohort, reference: Cohort) -> float:
    """Share of ``query`` patients whose visit sequence equals a ``reference`` patient's."""
    if query.n_patients == 0:
        return float("nan")
    return float(np.isin(view(query).patient_hashes, view(reference).patient_hashes).mean())


def nearest_jaccard_distance(
    query: Cohort, reference: Cohort, query_visits: npt.ArrayLike | None = None
) -> F64:
    """Jaccard distance from each chosen ``query`` visit to its nearest ``reference`` visit."""
    q_items, q_off = view(query).codes
    r_items, r_off = view(reference).codes
    chosen: I64 = (
        np.arange(query.n_visits, dtype=np.int64)
        if query_visits is None
        else np.asarray(query_visits, dtype=np.int64)
    )
    n_ref = reference.n_visits
    out = np.ones(chosen.size)
    if n_ref == 0 or chosen.size == 0:
        return out
    r_len = np.diff(r_off)
    q_len = np.diff(q_off)[chosen]
    # inverted index of the reference: visits sorted by code
    r_owner = np.repeat(np.arange(n_ref, dtype=np.int64), r_len)
    order = np.argsort(r_items, kind="stable")
    post_code = r_items[order]
    post_visit = r_owner[order]
    if (r_len == 0).any():
        out[q_len == 0] = 0.0
    chunk = max(1, CHUNK_CELLS // n_ref)
    for lo in range(0, chosen.size, chunk):
        sel = chosen[lo : lo + chunk]
        lens = np.diff(q_off)[sel]
        rows = np.repeat(q_off[sel], lens) + (
            np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        )
        codes = q_items[rows]
        local = np.repeat(np.arange(sel.size, dtype=np.int64), lens)
        start = np.searchsorted(post_code, codes, side="left")
        stop = np.searchsorted(post_code, codes, side="right")
        plen = stop - start
        total = int(plen.sum())
        if total == 0:
            continue
        first = np.cumsum(plen) - plen
        pos = np.repeat(start - first, plen) + np.arange(total)
        keys = np.repeat(local, plen) * n_ref + post_visit[pos]
        inter = np.bincount(keys, minlength=sel.size * n_ref)
        hit = np.flatnonzero(inter)
        qi, ri = hit // n_ref, hit % n_ref
        cnt = inter[hit].astype(np.float64)
        sim = cnt / (lens[qi] + r_len[ri] - cnt)
        best = np.zeros(sel.size)
        starts = np.searchsorted(qi, np.arange(sel.size))
        filled = starts < np.append(starts[1:], qi.size)
        best[filled] = np.maximum.reduceat(sim, starts[filled])
        out[lo : lo + sel.size] = np.minimum(out[lo : lo + sel.size], 1.0 - best)
    return out


def _cached_nearest(query: Cohort, reference: Cohort, chosen: I64) -> F64:
    """:func:`nearest_jaccard_distance`, remembered on the query's view (the held-out -> train
    distances are the same for every row of a report)."""
    cache: dict[tuple[int, bytes], tuple[weakref.ref[Cohort], F64]] = view(
        query
    ).__dict__.setdefault("_nearest_cache", {})
    key = (id(reference), hashlib.sha1(chosen.tobytes()).digest())
    hit = cache.get(key)
    if hit is not None and hit[0]() is reference:
        return hit[1]
    result = nearest_jaccard_distance(query, reference, chosen)
    cache[key] = (weakref.ref(reference), result)
    return result


def privacy(
    real: Cohort,
    synthetic: Cohort,
    *,
    train: Cohort | None = None,
    privacy_sample: int = 1000,
    seed: int = 0,
    **_: Any,
) -> dict[str, float]:
    """Exact copies, distance to closest record and membership-inference AUC.

    ``real`` is the held-out real data (never seen in training); needs ``train``, else empty.
    """
    if train is None or train.n_visits == 0:
        return {}
    rng = np.random.default_rng(seed)
    out = {
        "exact_copy_rate": copy_rate(synthetic, train),
        "exact_copy_rate_heldout": copy_rate(real, train),
    }
    if max(real.visits_per_patient.max(initial=0), synthetic.visits_per_patient.max(initial=0)) > 1:
        out["patient_copy_rate"] = patient_copy_rate(synthetic, train)
        out["patient_copy_rate_heldout"] = patient_copy_rate(real, train)

    def sample(c: Cohort) -> I64:
        k = min(privacy_sample, c.n_visits)
        return np.sort(rng.choice(c.n_visits, size=k, replace=False))

    syn_dcr = nearest_jaccard_distance(synthetic, train, sample(synthetic))
    held_dcr = _cached_nearest(real, train, sample(real))
    out["dcr_mean"] = float(syn_dcr.mean()) if syn_dcr.size else float("nan")
    out["dcr_mean_heldout"] = float(held_dcr.mean()) if held_dcr.size else float("nan")
    out["dcr_5th_percentile"] = float(np.percentile(syn_dcr, 5)) if syn_dcr.size else float("nan")
    out["dcr_5th_percentile_heldout"] = (
        float(np.percentile(held_dcr, 5)) if held_dcr.size else float("nan")
    )
    members = nearest_jaccard_distance(train, synthetic, sample(train))
    non_members = _cached_nearest(real, synthetic, sample(real))
    # the attacker calls "member" whatever lies close to a synthetic record
    out["mia_auc"] = auc(-members, -non_members)
    return out
