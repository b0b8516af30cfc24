"""Vectorised views of a cohort for evaluation: visits as sorted code sets, pairs as int64 keys.

Codes of every cohort are interned into one process-wide numbering (by their string), so two
cohorts with different vocabularies compare directly. Derived arrays are cached per cohort
(weakly, by identity: a ``Cohort`` is immutable).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.demographics import stratum

I64 = npt.NDArray[np.int64]

#: Pair keys are ``first * PAIR_BASE + second``; interned ids stay below this.
PAIR_BASE = 1 << 24

_code_ids: dict[str, int] = {}
_category_ids: dict[str, int] = {}
_categories_of_code: list[int] = []
_views: weakref.WeakKeyDictionary[Cohort, VisitView] = weakref.WeakKeyDictionary()


def category_of(code: str) -> str:
    """ICD-9-CM category of a normalised code (``hiergen.icd9.category_of`` where available)."""
    fn = _icd9_category_of()
    if fn is not None:
        try:
            return str(fn(code))
        except (KeyError, ValueError):
            pass
    return _fallback_category(code)


@functools.cache
def _icd9_category_of() -> Callable[[str], str] | None:
    try:
        from hiergen.icd9 import category_of as icd9_category_of
    except ImportError:
        return None
    return icd9_category_of


def _fallback_category(code: str) -> str:
    head = code.split(".", 1)[0]
    return head[:4] if head.startswith("E") else head[:3]


def intern_codes(vocab: Sequence[str]) -> I64:
    """Process-wide ids of code strings (stable for the life of the process)."""
    out = np.empty(len(vocab), dtype=np.int64)
    for i, code in enumerate(vocab):
        cid = _code_ids.get(code)
        if cid is None:
            cid = len(_code_ids)
            _code_ids[code] = cid
            cat = category_of(code)
            _categories_of_code.append(_category_ids.setdefault(cat, len(_category_ids)))
        out[i] = cid
    if len(_code_ids) >= PAIR_BASE:  # pragma: no cover - 16M distinct codes
        raise ValueError("vocab: more than 2**24 distinct codes across the evaluated cohorts")
    return out


def code_strings(ids: npt.ArrayLike) -> list[str]:
    """Code strings of interned ids."""
    names = list(_code_ids)
    return [names[i] for i in np.asarray(ids).ravel()]


def category_strings(ids: npt.ArrayLike) -> list[str]:
    """Category strings of interned category ids."""
    names = list(_category_ids)
    return [names[i] for i in np.asarray(ids).ravel()]


def category_id_table() -> I64:
    """Interned category id of every interned code id."""
    return np.asarray(_categories_of_code, dtype=np.int64)


def sorted_sets(owner: I64, items: I64, n_owners: int) -> tuple[I64, I64]:
    """Distinct items per owner, sorted: returns (items, offsets)."""
    keys = unique_counts(owner * PAIR_BASE + items)[0]
    own = keys // PAIR_BASE
    offsets = np.zeros(n_owners + 1, dtype=np.int64)
    np.cumsum(np.bincount(own, minlength=n_owners), out=offsets[1:])
    return keys % PAIR_BASE, offsets


def unique_counts(keys: I64) -> tuple[I64, I64]:
    """Sorted distinct keys and their counts (sort-based; faster than ``np.unique`` here)."""
    if keys.size == 0:
        return keys.astype(np.int64), np.zeros(0, dtype=np.int64)
    s = np.sort(keys, kind="stable" if keys.size < 1024 else "quicksort")
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    counts = np.diff(np.append(starts, s.size))
    return s[starts], counts


def within_pairs(items: I64, offsets: I64) -> I64:
    """Keys ``a * PAIR_BASE + b`` (a < b) of every unordered pair inside each set.

    ``items`` must be sorted within each set; each pair appears once per set.
    """
    lengths = np.diff(offsets)
    chunks: list[I64] = []
    for k in np.unique(lengths[lengths >= 2]):
        sets = np.flatnonzero(lengths == k)
        mat = items[offsets[sets][:, None] + np.arange(k)]
        i, j = np.triu_indices(int(k), 1)
        chunks.append((mat[:, i] * PAIR_BASE + mat[:, j]).ravel())
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


def cross_pairs(items: I64, offsets: I64, left: I64, right: I64) -> I64:
    """Ordered keys ``a * PAIR_BASE + b`` for a in set ``left[t]``, b in set ``right[t]``."""
    la = offsets[left + 1] - offsets[left]
    lb = offsets[right + 1] - offsets[right]
    sizes = la * lb
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    t = np.repeat(np.arange(left.size), sizes)
    start = np.zeros(left.size, dtype=np.int64)
    np.cumsum(sizes[:-1], out=start[1:])
    local = np.arange(total, dtype=np.int64) - start[t]
    a = items[offsets[left][t] + local // lb[t]]
    b = items[offsets[right][t] + local % lb[t]]
    return a * PAIR_BASE + b


def _splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def set_hashes(items: I64, offsets: I64) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of every set (sum of mixed item ids, order-free); empty sets hash to 0."""
    return _segment_sum(_splitmix(items.astype(np.uint64)), offsets)


class VisitView:
    """Derived arrays of one cohort, computed once on first use."""

    def __init__(self, cohort: Cohort) -> None:
        self.cohort = cohort
        self.n_visits = cohort.n_visits

    @cached_property
    def _visit_of_row(self) -> I64:
        return np.repeat(np.arange(self.n_visits, dtype=np.int64), self.cohort.visit_lengths)

    @cached_property
    def codes(self) -> tuple[I64, I64]:
        """Distinct interned code ids per visit, sorted: (items, offsets)."""
        ids = intern_codes(self.cohort.vocab)[self.cohort.codes.astype(np.int64)]
        return sorted_sets(self._visit_of_row, ids, self.n_visits)

    @cached_property
    def categories(self) -> tuple[I64, I64]:
        """Distinct interned category ids per visit, sorted: (items, offsets)."""
        items, offsets = self.codes
        lengths = np.diff(offsets)
        owner = np.repeat(np.arange(self.n_visits, dtype=np.int64), lengths)
        return sorted_sets(owner, category_id_table()[items], self.n_visits)

    def level(self, level: str) -> tuple[I64, I64]:
        if level == "code":
            return self.codes
        if level == "category":
            return self.categories
        raise ValueError(f"level: expected 'code' or 'category', got {level!r}")

    @cached_property
    def strata(self) -> npt.NDArray[np.int32]:
        return stratum(self.cohort.sex, self.cohort.age)

    @cached_property
    def code_hashes(self) -> npt.NDArray[np.uint64]:
        return set_hashes(*self.codes)

    @cached_property
    def patient_hashes(self) -> npt.NDArray[np.uint64]:
        """Order-aware hash of each patient's sequence of visit code sets."""
        po = self.cohort.patient_offsets
        pos = np.arange(self.n_visits, dtype=np.int64) - np.repeat(po[:-1], np.diff(po))
        with np.errstate(over="ignore"):
            mixed = _splitmix(self.code_hashes + _splitmix(pos.astype(np.uint64)))
        return _segment_sum(mixed, po)

    @cached_property
    def transitions(self) -> tuple[I64, I64]:
        """(earlier, later) visit index of every pair of consecutive visits of a patient."""
        same = np.ones(self.n_visits, dtype=bool)
        same[self.cohort.patient_offsets[:-1]] = False  # first visit of each patient
        later = np.flatnonzero(same)
        return later - 1, later

    def counts(self, level: str) -> tuple[I64, I64]:
        """(ids, number of visits holding each id)."""
        return self._counts(level, "unigram")

    def pair_counts(self, level: str) -> tuple[I64, I64]:
        return self._counts(level, "pair")

    def consecutive_counts(self, level: str) -> tuple[I64, I64]:
        return self._counts(level, "consecutive")

    def _counts(self, level: str, kind: str) -> tuple[I64, I64]:
        key = (level, kind)
        cache: dict[tuple[str, str], tuple[I64, I64]] = self.__dict__.setdefault("_count_cache", {})
        if key not in cache:
            items, offsets = self.level(level)
            if kind == "unigram":
                keys = items
            elif kind == "pair":
                keys = within_pairs(items, offsets)
            else:
                keys = cross_pairs(items, offsets, *self.transitions)
            cache[key] = unique_counts(keys)
        return cache[key]


def _segment_sum(values: npt.NDArray[np.uint64], offsets: I64) -> npt.NDArray[np.uint64]:
    cum = np.zeros(values.size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(values, out=cum[1:])
        return cum[offsets[1:]] - cum[offsets[:-1]]


def view(cohort: Cohort) -> VisitView:
    """The cached :class:`VisitView` of ``cohort``."""
    v = _views.get(cohort)
    if v is None:
        v = VisitView(cohort)
        _views[cohort] = v
    return v
