"""The two reference points every metric is printed beside.

* **ceiling**: real against real - a sample of the training data the size of the evaluated
  set, scored like a generator (privacy metrics then use the rest of the training data);
* **floor**: independent codes drawn at their marginal rates, with the real visits' sizes and
  demographics - what a generator knowing nothing but code frequencies achieves.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort


def independent_codes(
    reference: Cohort, like: Cohort, *, seed: int = 0
) -> Cohort:
    """Visits shaped like ``like`` (sizes, patients, age, sex) whose codes are drawn
    independently, without replacement inside a visit, at their visit rates in ``reference``."""
    counts = np.bincount(reference.codes, minlength=len(reference.vocab)).astype(np.float64)
    if counts.sum() == 0:
        raise ValueError("reference: the cohort holds no codes to draw from")
    present = np.flatnonzero(counts)
    lengths = np.minimum(like.visit_lengths, present.size)
    cdf = np.cumsum(counts[present])
    cdf /= cdf[-1]
    rng = np.random.default_rng(seed)
    n = int(lengths.sum())
    visit = np.repeat(np.arange(like.n_visits, dtype=np.int64), lengths)
    drawn = _draw(rng, cdf, n)
    # Redraw duplicates inside a visit until none is left: each accepted draw then follows the
    # weights restricted to the codes not yet in the visit (successive sampling).
    for _ in range(10_000):
        dup = _duplicates(visit, drawn)
        if not dup.any():
            break
        drawn[dup] = _draw(rng, cdf, int(dup.sum()))
    vo = np.zeros(like.n_visits + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    return Cohort(
        patient_ids=like.patient_ids,
        patient_offsets=like.patient_offsets,
        visit_offsets=vo,
        codes=present[drawn].astype(np.int32),
        vocab=reference.vocab,
        sex=like.sex,
        age=like.age,
        time=like.time,
    )


def _draw(rng: np.random.Generator, cdf: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.int64]:
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, cdf.size - 1).astype(np.int64)


def _duplicates(
    visit: npt.NDArray[np.int64], drawn: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Mask of draws that repeat an earlier draw of the same visit."""
    key = visit * (int(drawn.max(initial=0)) + 1) + drawn
    order = np.argsort(key, kind="stable")
    sk = key[order]
    dup = np.zeros(key.size, dtype=bool)
    dup[order[1:]] = sk[1:] == sk[:-1]
    return dup


def resample_split(
    train: Cohort, n_visits: int, *, seed: int = 0
) -> tuple[Cohort, Cohort]:
    """Split ``train`` by patient into (a sample holding about ``n_visits`` visits, the rest)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(train.n_patients)
    cum = np.cumsum(train.visits_per_patient[perm])
    k = int(np.searchsorted(cum, n_visits, side="left")) + 1
    k = min(max(k, 1), train.n_patients - 1) if train.n_patients > 1 else 1
    return train.select_patients(perm[:k]), train.select_patients(perm[k:])
