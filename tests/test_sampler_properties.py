"""Property tests (hypothesis) over arbitrary hierarchies, weights and category streams."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

core = pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
CategoryIndex = core.CategoryIndex

# A weight is zero, or a positive float spanning many orders of magnitude.
weight = st.one_of(st.just(0.0), st.floats(min_value=1e-9, max_value=1e9))


@st.composite
def hierarchies(draw: Any, max_strata: int = 3) -> tuple[np.ndarray, np.ndarray, str]:
    sizes = draw(st.lists(st.integers(1, 9), min_size=1, max_size=12))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_strata = draw(st.integers(1, max_strata))
    w = np.array(draw(st.lists(weight, min_size=n_strata * int(offsets[-1]),
                               max_size=n_strata * int(offsets[-1])))).reshape(n_strata, -1)
    uniform = draw(st.booleans())
    if not uniform:  # every category needs a positive weight in every stratum
        for s in range(n_strata):
            for c in range(len(sizes)):
                if not (w[s, offsets[c] : offsets[c + 1]] > 0).any():
                    w[s, offsets[c]] = 1.0
    return offsets, w, "uniform" if uniform else "error"


def _effective(offsets: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weights the sampler draws from (all-zero categories become uniform)."""
    eff = w.copy()
    for c in range(offsets.size - 1):
        block = eff[:, offsets[c] : offsets[c + 1]]
        block[~(block > 0).any(axis=1)] = 1.0
    return eff


@settings(max_examples=150, deadline=None)
@given(h=hierarchies(), data=st.data(), seed=st.integers(0, 2**64 - 1))
def test_codes_belong_to_category_and_have_weight(h: Any, data: Any, seed: int) -> None:
    offsets, w, policy = h
    index = CategoryIndex(offsets, w, zero_weight=policy)
    n_cat, n_strata = offsets.size - 1, w.shape[0]
    cats = np.array(data.draw(st.lists(st.integers(0, n_cat - 1), max_size=300)), dtype=np.int64)
    strata = np.array(data.draw(st.lists(st.integers(0, n_strata - 1), min_size=cats.size,
                                         max_size=cats.size)), dtype=np.int64)
    codes = index.sample(cats, strata, seed=seed)
    assert codes.dtype == np.int32 and codes.shape == cats.shape
    assert ((codes >= offsets[cats]) & (codes < offsets[cats + 1])).all()
    assert (_effective(offsets, w)[strata, codes] > 0).all()
    assert np.array_equal(codes, index.sample(cats, strata, seed=seed, threads=3))


@settings(max_examples=150, deadline=None)
@given(h=hierarchies(), data=st.data(), seed=st.integers(0, 2**64 - 1))
def test_visits_distinct_wherever_the_category_allows(h: Any, data: Any, seed: int) -> None:
    offsets, w, policy = h
    index = CategoryIndex(offsets, w, zero_weight=policy)
    eff = _effective(offsets, w)
    n_cat, n_strata = offsets.size - 1, w.shape[0]
    visits = data.draw(st.lists(st.lists(st.integers(0, n_cat - 1), max_size=15), max_size=20))
    cats = np.array([c for v in visits for c in v], dtype=np.int32)
    vo = np.concatenate([[0], np.cumsum([len(v) for v in visits])]).astype(np.int64)
    strata = np.array(data.draw(st.lists(st.integers(0, n_strata - 1), min_size=len(visits),
                                         max_size=len(visits))), dtype=np.int32)
    codes = index.sample_visits(cats, vo, strata, seed=seed)
    for v in range(len(visits)):
        vc, vcode = cats[vo[v] : vo[v + 1]], codes[vo[v] : vo[v + 1]]
        row = eff[strata[v]] if strata.size else eff[0]
        assert ((vcode >= offsets[vc]) & (vcode < offsets[vc + 1])).all()
        assert (row[vcode] > 0).all()
        for c in set(vc.tolist()):
            n_pos = int((row[offsets[c] : offsets[c + 1]] > 0).sum())
            drawn = vcode[vc == c]
            assert len(set(drawn.tolist())) == min(drawn.size, n_pos)
    assert np.array_equal(codes, index.sample_visits(cats, vo, strata, seed=seed, threads=4))


@settings(max_examples=60, deadline=None)
@given(h=hierarchies(max_strata=1), seed=st.integers(0, 2**32))
def test_with_weights_equals_fresh_index(h: Any, seed: int) -> None:
    offsets, w, policy = h
    cats = np.arange(offsets.size - 1).repeat(5)
    fresh = CategoryIndex(offsets, w, zero_weight=policy)
    other = CategoryIndex(offsets, np.ones_like(w), zero_weight=policy).with_weights(w)
    assert np.array_equal(fresh.sample(cats, seed=seed), other.sample(cats, seed=seed))
