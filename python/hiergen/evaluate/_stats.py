"""Small statistics shared by the metrics: aligned prevalences, R2, total variation, AUC."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def aligned_rates(
    keys_a: I64, counts_a: I64, n_a: int, keys_b: I64, counts_b: I64, n_b: int
) -> tuple[F64, F64]:
    """Rates (count / n) of both sides over the union of their sorted keys."""
    union = np.union1d(keys_a, keys_b)
    ra = np.zeros(union.size)
    rb = np.zeros(union.size)
    if n_a:
        ra[np.searchsorted(union, keys_a)] = counts_a / n_a
    if n_b:
        rb[np.searchsorted(union, keys_b)] = counts_b / n_b
    return ra, rb


def r2(real: F64, synthetic: F64) -> float:
    """Coefficient of determination of ``synthetic`` as a prediction of ``real``.

    NaN when the real values have no variance (fewer than two items, or all equal).
    """
    if real.size < 2:
        return float("nan")
    ss_tot = float(((real - real.mean()) ** 2).sum())
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(((real - synthetic) ** 2).sum()) / ss_tot


def total_variation(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Total variation distance between the distributions of two integer samples."""
    xa = np.asarray(a, dtype=np.int64)
    xb = np.asarray(b, dtype=np.int64)
    if xa.size == 0 or xb.size == 0:
        return float("nan")
    size = int(max(xa.max(initial=0), xb.max(initial=0))) + 1
    pa = np.bincount(xa, minlength=size) / xa.size
    pb = np.bincount(xb, minlength=size) / xb.size
    return 0.5 * float(np.abs(pa - pb).sum())


def auc(positive: F64, negative: F64) -> float:
    """Area under the ROC curve: P(positive score > negative score), ties counting one half."""
    if positive.size == 0 or negative.size == 0:
        return float("nan")
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1])))
    ends = np.append(starts[1:], scores.size)
    avg_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat(avg_rank, ends - starts)
    n_pos = positive.size
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * negative.size))
