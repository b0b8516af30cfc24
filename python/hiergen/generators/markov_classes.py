"""Visit classes for the ``markov`` generator: a Bernoulli mixture over the categories of a visit.

A Markov chain sees only the last few categories of a visit, so it misses the visit-level
profile that makes ``403`` (hypertensive kidney disease) go with ``585`` (chronic kidney
disease) and exclude ``401`` (essential hypertension), however far apart they are. A latent
class per visit carries that profile: fitted here by EM on the sets of distinct categories
of the training visits, each class ``k`` holding a weight ``pi_k`` and an inclusion
probability ``p_kc`` per category. Each training visit is then given one class, drawn from
its posterior, and the chain conditions on it (feature ``cls``).

Everything is vectorised over the ``(visit, category)`` incidences: the E-step gathers
``log p - log(1 - p)`` rows per incidence and sums them per visit, the M-step sums
responsibilities per category with one ``bincount`` per class, so an iteration costs ``O(nnz * K)``.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


def fit_visit_classes(
    visit_offsets: npt.NDArray[np.int64],
    cats: npt.NDArray[np.int32],
    n_categories: int,
    n_classes: int,
    *,
    iterations: int = 20,
    seed: int = 0,
    prior: float = 0.5,
    assign: str = "sample",
) -> npt.NDArray[np.int32]:
    """One class in ``[0, n_classes)`` per visit under a Bernoulli mixture fitted by EM
    (``prior``: pseudo-count of the Beta prior on every ``p_kc``): drawn from its posterior
    (``assign="sample"``) or the most probable one (``"map"``)."""
    if assign not in ("sample", "map"):
        raise ValueError(f"assign: 'sample' or 'map' expected, got {assign!r}")
    n_visits = int(visit_offsets.size - 1)
    rng = np.random.default_rng(seed)
    if n_visits == 0:
        return np.zeros(0, dtype=np.int32)
    k = max(1, min(int(n_classes), n_visits))
    lengths = np.diff(visit_offsets)
    visit = np.repeat(np.arange(n_visits, dtype=np.int64), lengths)
    key = np.sort(visit * np.int64(n_categories) + cats.astype(np.int64))
    keep = np.ones(key.size, dtype=bool)
    keep[1:] = key[1:] != key[:-1]
    key = key[keep]
    v_idx = key // n_categories
    c_idx = (key % n_categories).astype(np.int64)
    # distinct categories of every visit as a padded matrix (``n_categories`` pads)
    n_inc = np.bincount(v_idx, minlength=n_visits)
    v_starts = np.searchsorted(v_idx, np.arange(n_visits))
    pad = np.full((n_visits, max(1, int(n_inc.max()))), n_categories, dtype=np.int64)
    pad[v_idx, np.arange(v_idx.size) - v_starts[v_idx]] = c_idx
    resp = rng.dirichlet(np.full(k, 1.0), size=n_visits).astype(np.float32)
    for it in range(max(1, iterations)):
        # M-step
        nk = resp.sum(axis=0, dtype=np.float64) + 1e-3
        resp_inc = np.ascontiguousarray(resp.T)[:, v_idx]  # (k, nnz), class-major
        inc = np.stack(
            [np.bincount(c_idx, weights=row, minlength=n_categories) for row in resp_inc], axis=1
        )
        p = (inc + prior) / (nk + 2 * prior)
        pi = nk / nk.sum()
        if it == iterations - 1:
            break
        # E-step
        w = (np.log(p) - np.log1p(-p)).astype(np.float32)
        const = (np.log1p(-p).sum(axis=0) + np.log(pi)).astype(np.float32)
        w_pad = np.vstack([w, np.zeros((1, k), dtype=np.float32)])
        ll = np.repeat(const[None, :], n_visits, axis=0)
        for j in range(pad.shape[1]):
            ll += w_pad[pad[:, j]]
        ll -= ll.max(axis=1, keepdims=True)
        np.exp(ll, out=ll)
        ll /= ll.sum(axis=1, keepdims=True)
        resp = ll
    if assign == "map":
        return np.argmax(resp, axis=1).astype(np.int32)
    cdf = np.cumsum(resp, axis=1)
    u = rng.random(n_visits, dtype=np.float32) * cdf[:, -1]
    out = (cdf < u[:, None]).sum(axis=1)
    return np.minimum(out, k - 1).astype(np.int32)


__all__ = ["fit_visit_classes"]
