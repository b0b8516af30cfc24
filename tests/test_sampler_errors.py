"""Every bad input to hiergen._core.CategoryIndex gets a ValueError/TypeError naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

core = pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
CategoryIndex = core.CategoryIndex

OFFSETS = np.array([0, 2, 5], dtype=np.int64)
WEIGHTS = np.array([1.0, 2.0, 1.0, 1.0, 1.0])


def _index(**kw: Any) -> Any:
    return CategoryIndex(OFFSETS, WEIGHTS, **kw)


def _two_strata() -> Any:
    return CategoryIndex(OFFSETS, np.stack([WEIGHTS, WEIGHTS]))


CONSTRUCTION: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("offsets not monotonic", lambda: CategoryIndex([0, 3, 2, 5], np.ones(5)), ValueError,
     "offsets: not monotonic"),
    ("empty category", lambda: CategoryIndex([0, 2, 2, 5], np.ones(5)), ValueError,
     "offsets: category 1 is empty"),
    ("offsets not from 0", lambda: CategoryIndex([1, 5], np.ones(5)), ValueError,
     "offsets: must start at 0"),
    ("offsets end != n_codes", lambda: CategoryIndex([0, 2, 4], np.ones(5)), ValueError,
     "does not match the number of codes"),
    ("offsets too short", lambda: CategoryIndex([0], np.ones(0)), ValueError,
     "offsets: needs at least 2"),
    ("offsets float", lambda: CategoryIndex(np.array([0.0, 5.0]), np.ones(5)), TypeError,
     "offsets: expected integer"),
    ("offsets bool", lambda: CategoryIndex(np.array([False, True]), np.ones(1)), TypeError,
     "offsets: expected integer"),
    ("offsets 2-D", lambda: CategoryIndex(np.array([[0, 5]]), np.ones(5)), ValueError,
     "offsets: expected a 1-D array"),
    ("negative weight", lambda: CategoryIndex(OFFSETS, [1.0, -1.0, 1, 1, 1]), ValueError,
     r"weights\[1\] = -1 is negative"),
    ("NaN weight", lambda: CategoryIndex(OFFSETS, [1.0, np.nan, 1, 1, 1]), ValueError,
     r"weights\[1\] = nan is not finite"),
    ("inf weight",
     lambda: CategoryIndex(OFFSETS, np.array([[1.0, 1, 1, 1, 1], [1, 1, 1, np.inf, 1]])),
     ValueError, r"weights\[1, 3\] = inf is not finite"),
    ("all-zero category", lambda: CategoryIndex(OFFSETS, [0.0, 0.0, 1, 1, 1]), ValueError,
     "category 0 .* only zero weights.*zero_weight='uniform'"),
    ("all-zero category in stratum 1",
     lambda: CategoryIndex(OFFSETS, np.array([[1.0, 1, 1, 1, 1], [1, 1, 0, 0, 0]])), ValueError,
     "category 1 .* only zero weights in stratum 1"),
    ("bad zero_weight", lambda: _index(zero_weight="skip"), ValueError, "zero_weight"),
    ("weights string dtype", lambda: CategoryIndex(OFFSETS, np.array(["a"] * 5)), TypeError,
     "weights: expected numeric"),
    ("weights bool", lambda: CategoryIndex(OFFSETS, np.ones(5, dtype=bool)), TypeError,
     "weights: expected numeric"),
    ("weights 3-D", lambda: CategoryIndex(OFFSETS, np.ones((1, 1, 5))), ValueError,
     "weights: expected shape"),
    ("weights with no strata", lambda: CategoryIndex(OFFSETS, np.ones((0, 5))), ValueError,
     "weights: needs at least one stratum"),
    ("weights None", lambda: CategoryIndex(OFFSETS, None), TypeError, "weights"),
    ("with_weights wrong width", lambda: _index().with_weights(np.ones(4)), ValueError,
     "weights: expected 5 codes"),
    ("with_weights NaN", lambda: _index().with_weights([1.0, 1, 1, np.nan, 1]), ValueError,
     "not finite"),
]


@pytest.mark.parametrize(("case", "fn", "exc", "match"), CONSTRUCTION,
                         ids=[c[0] for c in CONSTRUCTION])
def test_construction_errors(case: str, fn: Callable[[], Any], exc: type[Exception],
                             match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


SAMPLE: list[tuple[str, Callable[[Any], Any], type[Exception], str]] = [
    ("category out of range", lambda ix: ix.sample([0, 1, 2], seed=0), ValueError,
     r"categories\[2\] = 2 is out of range; the index has 2 categories"),
    ("negative category", lambda ix: ix.sample([0, -1], seed=0), ValueError,
     r"categories\[1\] = -1 is negative"),
    ("huge int64 category", lambda ix: ix.sample(np.array([2**40]), seed=0), ValueError,
     "out of range"),
    ("uint64 beyond int64", lambda ix: ix.sample(np.array([2**63], dtype=np.uint64), seed=0),
     ValueError, "categories: value"),
    ("float categories", lambda ix: ix.sample(np.array([0.0, 1.0]), seed=0), TypeError,
     "categories: expected integer ids, got dtype float64"),
    ("float list", lambda ix: ix.sample([0.5], seed=0), TypeError, "categories"),
    ("bool categories", lambda ix: ix.sample(np.array([True]), seed=0), TypeError,
     "categories: expected integer ids, got a bool"),
    ("object categories", lambda ix: ix.sample(np.array(["a"], dtype=object), seed=0),
     TypeError, "categories"),
    ("2-D categories", lambda ix: ix.sample(np.zeros((2, 2), np.int32), seed=0), ValueError,
     "categories: expected a 1-D array"),
    ("scalar categories", lambda ix: ix.sample(1, seed=0), ValueError,
     "categories: expected a 1-D array"),
    ("stratum out of range", lambda ix: ix.sample([0, 1], [0, 1], seed=0), ValueError,
     r"strata\[1\] = 1 is out of range; the index has 1 strata"),
    ("scalar stratum out of range", lambda ix: ix.sample([0, 1], 3, seed=0), ValueError,
     "strata = 3 is out of range"),
    ("negative stratum", lambda ix: ix.sample([0], [-1], seed=0), ValueError,
     r"strata\[0\] = -1 is negative"),
    ("strata wrong length", lambda ix: ix.sample([0, 1], [0], seed=0), ValueError,
     "strata: expected one stratum per category id"),
    ("strata float", lambda ix: ix.sample([0, 1], [0.0, 0.0], seed=0), TypeError, "strata"),
    ("strata bool", lambda ix: ix.sample([0], True, seed=0), TypeError, "strata"),
    ("negative seed", lambda ix: ix.sample([0], seed=-1), ValueError, "seed: must be >= 0"),
    ("seed too big", lambda ix: ix.sample([0], seed=2**64), ValueError, "seed: must be below"),
    ("float seed", lambda ix: ix.sample([0], seed=1.5), TypeError, "seed"),
    ("None seed", lambda ix: ix.sample([0], seed=None), TypeError, "seed"),
    ("zero threads", lambda ix: ix.sample([0], seed=0, threads=0), ValueError,
     "threads: must be >= 1"),
    ("float threads", lambda ix: ix.sample([0], seed=0, threads=2.0), TypeError, "threads"),
    ("out wrong dtype", lambda ix: ix.sample([0, 1], seed=0, out=np.empty(2, np.int64)),
     TypeError, "out: expected dtype int32"),
    ("out wrong size", lambda ix: ix.sample([0, 1], seed=0, out=np.empty(3, np.int32)),
     ValueError, r"out: expected shape \(2,\)"),
    ("out list", lambda ix: ix.sample([0, 1], seed=0, out=[0, 0]), TypeError,
     "out: expected a numpy int32 array"),
    ("out non-contiguous", lambda ix: ix.sample([0, 1], seed=0, out=np.empty(4, np.int32)[::2]),
     ValueError, "out: must be C-contiguous"),
    ("out read-only", lambda ix: ix.sample([0, 1], seed=0, out=_read_only(np.empty(2, np.int32))),
     ValueError, "out: is read-only"),
    ("out aliases categories",
     lambda ix: (lambda a: ix.sample(a, seed=0, out=a))(np.zeros(3, np.int32)), ValueError,
     "out: must not share memory"),
]


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@pytest.mark.parametrize(("case", "fn", "exc", "match"), SAMPLE, ids=[c[0] for c in SAMPLE])
def test_sample_errors(case: str, fn: Callable[[Any], Any], exc: type[Exception],
                       match: str) -> None:
    with pytest.raises(exc, match=match):
        fn(_index())


def test_strata_required_with_several_strata() -> None:
    with pytest.raises(ValueError, match="strata: required, the index has 2 strata"):
        _two_strata().sample([0, 1], seed=0)
    with pytest.raises(ValueError, match="strata: required"):
        _two_strata().sample_visits([0, 1], [0, 2], seed=0)


def test_bad_category_found_first_whatever_the_threads() -> None:
    cats = np.zeros(400_000, np.int32)
    cats[[123_456, 300_000]] = [7, -3]
    for t in (1, 2, 8):
        with pytest.raises(ValueError, match=r"categories\[123456\] = 7"):
            _index().sample(cats, seed=0, threads=t)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize(("bad_cat", "bad_stratum"), [(70_001, 70_002), (70_002, 70_001),
                                                      (99_999, 16_384), (16_383, 16_384)])
def test_first_bad_element_named_be_it_category_or_stratum(
    dtype: type[np.integer[Any]], bad_cat: int, bad_stratum: int
) -> None:
    # Elements are drawn in pairs (one random number each) and strata checked before the
    # chunk's categories: the element named must still be the first bad one, at even and odd
    # positions and on both sides of a chunk boundary (16,384 elements).
    cats = np.zeros(100_000, np.int32)
    cats[bad_cat] = 9
    strata = np.zeros(100_000, dtype)
    strata[bad_stratum] = 2
    first = min(bad_cat, bad_stratum)
    what = (rf"categories\[{first}\] = 9" if first == bad_cat
            else rf"strata\[{first}\] = 2")
    for t in (1, 2):
        with pytest.raises(ValueError, match=what):
            _two_strata().sample(cats, strata, seed=0, threads=t)


VISITS: list[tuple[str, Callable[[Any], Any], type[Exception], str]] = [
    ("offsets not from 0", lambda ix: ix.sample_visits([0, 1], [1, 2], seed=0), ValueError,
     "visit_offsets: must start at 0"),
    ("offsets not monotonic", lambda ix: ix.sample_visits([0, 1, 1], [0, 2, 1, 3], seed=0),
     ValueError, "visit_offsets: not monotonic"),
    ("offsets end mismatch", lambda ix: ix.sample_visits([0, 1, 1], [0, 2], seed=0), ValueError,
     "visit_offsets: last entry 2 does not match the length of categories"),
    ("offsets empty", lambda ix: ix.sample_visits([], [], seed=0), ValueError,
     "visit_offsets: needs at least one entry"),
    ("offsets float", lambda ix: ix.sample_visits([0], [0.0, 1.0], seed=0), TypeError,
     "visit_offsets: expected integer"),
    ("category out of range", lambda ix: ix.sample_visits([0, 5], [0, 1, 2], seed=0),
     ValueError, r"categories\[1\] = 5 is out of range"),
    ("stratum out of range", lambda ix: ix.sample_visits([0, 1], [0, 1, 2], [0, 4], seed=0),
     ValueError, r"strata\[1\] = 4 is out of range"),
    ("strata per element, not per visit",
     lambda ix: ix.sample_visits([0, 1], [0, 2], [0, 0], seed=0), ValueError,
     r"strata: expected one stratum per visit \(1\)"),
    ("out wrong size", lambda ix: ix.sample_visits([0, 1], [0, 2], seed=0,
                                                   out=np.empty(1, np.int32)),
     ValueError, "out: expected shape"),
]


@pytest.mark.parametrize(("case", "fn", "exc", "match"), VISITS, ids=[c[0] for c in VISITS])
def test_sample_visits_errors(case: str, fn: Callable[[Any], Any], exc: type[Exception],
                              match: str) -> None:
    with pytest.raises(exc, match=match):
        fn(_index())


def test_failed_call_leaves_the_index_usable() -> None:
    ix = _index()
    with pytest.raises(ValueError):
        ix.sample([0, 9], seed=0)
    assert ix.sample([0, 1], seed=0).shape == (2,)


def test_sample_visits_reports_the_first_bad_visit() -> None:
    # Inputs are validated before drawing; the error named is the one of the earliest visit.
    ix = _two_strata()
    with pytest.raises(ValueError, match=r"strata\[0\] = 5"):
        ix.sample_visits([0, 7], [0, 1, 2], [5, 0], seed=0)
    with pytest.raises(ValueError, match=r"categories\[0\] = 7"):
        ix.sample_visits([7, 0], [0, 1, 2], [0, 5], seed=0)
    with pytest.raises(ValueError, match=r"categories\[2\] = -1 is negative"):
        ix.sample_visits([0, 1, -1], [0, 2, 2, 3], [0, 0, 1], seed=0)
