"""Diversity: distinct codes and categories in N synthetic visits against N real visits."""

from __future__ import annotations

from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.evaluate._visits import view


def _distinct(cohort: Cohort, level: str, n: int, rng: np.random.Generator) -> int:
    items, offsets = view(cohort).level(level)
    chosen = rng.choice(cohort.n_visits, size=n, replace=False)
    lengths = np.diff(offsets)[chosen]
    rows = np.repeat(offsets[chosen], lengths) + (
        np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    return int(np.unique(items[rows]).size)


def diversity(real: Cohort, synthetic: Cohort, *, seed: int = 0, **_: Any) -> dict[str, float]:
    """Distinct codes and categories in N random visits of each side, N the smaller size.

    Also the mean number of distinct codes per patient (a collapsed generator repeats itself).
    """
    n = min(real.n_visits, synthetic.n_visits)
    out: dict[str, float] = {"diversity_visits": float(n)}
    for level, plural in (("code", "codes"), ("category", "categories")):
        rs = _distinct(real, level, n, np.random.default_rng(seed))
        ss = _distinct(synthetic, level, n, np.random.default_rng(seed + 1))
        out[f"distinct_{plural}"] = float(ss)
        out[f"distinct_{plural}_real"] = float(rs)
        out[f"{level}_diversity_ratio"] = ss / rs if rs else float("nan")
    return out
