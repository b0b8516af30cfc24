"""The sparsity table: how many item pairs co-occur in a visit, for codes and for categories.

Convention (stated in the output): pairs are unordered pairs of *distinct* items, no
self-pairs; ``possible = n * (n - 1) / 2`` for ``n`` distinct items observed; a pair is observed
when both items share at least one visit. Mean partners = mean over items of the number of
distinct items they co-occur with (= 2 * observed / n).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy

Level = Literal["code", "category"]
PAIR_CONVENTION = "unordered pairs of distinct items sharing a visit (no self-pairs)"
_CHUNK_PAIRS = 20_000_000


@dataclass(frozen=True)
class LevelSparsity:
    level: str
    items: int
    possible_pairs: int
    observed_pairs: int
    mean_partners: float
    median_partners: float

    @property
    def coverage(self) -> float:
        return self.observed_pairs / self.possible_pairs if self.possible_pairs else 0.0


@dataclass(frozen=True)
class Sparsity:
    visits: int
    rows: int
    code: LevelSparsity
    category: LevelSparsity

    def ratios(self) -> dict[str, float]:
        """Code level over category level (items, possible pairs), and category coverage over
        code coverage."""
        c, k = self.code, self.category
        return {
            "items": c.items / k.items if k.items else float("nan"),
            "possible_pairs": (
                c.possible_pairs / k.possible_pairs if k.possible_pairs else float("nan")
            ),
            "coverage": k.coverage / c.coverage if c.coverage else float("nan"),
            "mean_partners": k.mean_partners / c.mean_partners if c.mean_partners else float("nan"),
        }

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"visits": self.visits, "rows": self.rows,
                                  "pair_convention": PAIR_CONVENTION}
        for lv in (self.code, self.category):
            d = asdict(lv)
            d["coverage"] = lv.coverage
            out[lv.level] = d
        out["ratios"] = self.ratios()
        return out


def _unique(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Sorted distinct values (sort + compare: faster than ``np.unique`` for int64 keys)."""
    if keys.size == 0:
        return keys
    s = np.sort(keys)
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _distinct_per_visit(
    items: npt.NDArray[np.int64], visit_offsets: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Remove repeated items inside each visit: (items sorted within visit, new offsets)."""
    n_visits = visit_offsets.size - 1
    visit = np.repeat(np.arange(n_visits, dtype=np.int64), np.diff(visit_offsets))
    n_items = int(items.max(initial=-1)) + 1
    key = _unique(visit * max(n_items, 1) + items)
    v = key // max(n_items, 1)
    offsets = np.zeros(n_visits + 1, dtype=np.int64)
    np.cumsum(np.bincount(v, minlength=n_visits), out=offsets[1:])
    return key % max(n_items, 1), offsets


def observed_pairs(
    items: npt.NDArray[np.int64], visit_offsets: npt.NDArray[np.int64], n_items: int
) -> npt.NDArray[np.int64]:
    """Distinct observed pairs as sorted int64 keys ``a * n_items + b`` with ``a < b``.

    Items must be distinct and sorted within each visit. Pairs are generated vectorised, in
    chunks of visits so memory stays bounded.
    """
    lengths = np.diff(visit_offsets)
    pairs_per_visit = lengths * (lengths - 1) // 2
    cum = np.cumsum(pairs_per_visit)
    found: list[npt.NDArray[np.int64]] = []
    start = 0
    n_visits = lengths.size
    while start < n_visits:
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + _CHUNK_PAIRS, side="right"))
        stop = max(stop, start + 1)
        found.append(_chunk_pairs(items, visit_offsets, start, min(stop, n_visits), n_items))
        start = stop
    if not found:
        return np.zeros(0, dtype=np.int64)
    return _unique(np.concatenate(found))


def _chunk_pairs(
    items: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], v0: int, v1: int, n_items: int
) -> npt.NDArray[np.int64]:
    lo, hi = int(offsets[v0]), int(offsets[v1])
    if hi - lo < 2:
        return np.zeros(0, dtype=np.int64)
    rows = np.arange(lo, hi, dtype=np.int64)
    visit_end = np.repeat(offsets[v0 + 1 : v1 + 1], np.diff(offsets[v0 : v1 + 1]))
    partners = visit_end - rows - 1  # later items of the same visit
    first = np.repeat(rows, partners)
    starts = np.zeros(partners.size, dtype=np.int64)
    np.cumsum(partners[:-1], out=starts[1:])
    second = first + 1 + (np.arange(first.size, dtype=np.int64) - np.repeat(starts, partners))
    a, b = items[first], items[second]
    return _unique(np.minimum(a, b) * np.int64(n_items) + np.maximum(a, b))


def level_sparsity(
    items: npt.NDArray[np.int64], visit_offsets: npt.NDArray[np.int64], level: str
) -> LevelSparsity:
    """Sparsity of one level from per-row item ids and visit offsets."""
    distinct, offsets = _distinct_per_visit(items.astype(np.int64), visit_offsets)
    used = _unique(distinct)
    local = np.searchsorted(used, distinct)
    n = int(used.size)
    keys = observed_pairs(local.astype(np.int64), offsets, max(n, 1))
    m = max(n, 1)
    partners = np.bincount(keys // m, minlength=n) + np.bincount(keys % m, minlength=n)
    return LevelSparsity(
        level=level,
        items=n,
        possible_pairs=n * (n - 1) // 2,
        observed_pairs=int(keys.size),
        mean_partners=float(partners.mean()) if n else 0.0,
        median_partners=float(np.median(partners)) if n else 0.0,
    )


def sparsity(cohort: Cohort, hierarchy: Hierarchy | None = None) -> Sparsity:
    """The sparsity table of a cohort for codes and categories (``hierarchy`` defaults to the
    ICD-9-CM categories of the cohort's codes)."""
    h = hierarchy or Hierarchy.from_codes(cohort.vocab)
    codes = cohort.code_ids_in(h).astype(np.int64)
    cats = h.code_category[codes].astype(np.int64)
    return Sparsity(
        visits=cohort.n_visits,
        rows=cohort.n_rows,
        code=level_sparsity(codes, cohort.visit_offsets, "code"),
        category=level_sparsity(cats, cohort.visit_offsets, "category"),
    )


def format_sparsity(s: Sparsity) -> str:
    """The table as text, with the pair convention stated."""
    rows = [
        ("distinct items", lambda lv: f"{lv.items:,}"),
        ("possible pairs", lambda lv: f"{lv.possible_pairs:,}"),
        ("observed pairs", lambda lv: f"{lv.observed_pairs:,}"),
        ("coverage", lambda lv: f"{100 * lv.coverage:.2f}%"),
        ("mean distinct partners", lambda lv: f"{lv.mean_partners:.1f}"),
        ("median distinct partners", lambda lv: f"{lv.median_partners:.0f}"),
    ]
    r = s.ratios()
    ratio = {
        "distinct items": f"{r['items']:.2f}x fewer",
        "possible pairs": f"{r['possible_pairs']:.1f}x fewer",
        "coverage": f"{r['coverage']:.2f}x higher",
        "mean distinct partners": f"{r['mean_partners']:.2f}x",
    }
    lines = [
        f"{s.visits:,} visits, {s.rows:,} diagnosis rows",
        f"pairs: {PAIR_CONVENTION}; possible = n(n-1)/2",
        f"{'':26}{'codes':>14}{'categories':>14}   categories vs codes",
    ]
    for name, fmt in rows:
        lines.append(f"{name:26}{fmt(s.code):>14}{fmt(s.category):>14}   {ratio.get(name, '')}")
    return "\n".join(lines)


def sparsity_json(s: Sparsity) -> str:
    return json.dumps(s.to_dict(), indent=2)
