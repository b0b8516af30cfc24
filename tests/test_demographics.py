"""Age bands and strata: the band of an age is the number of band edges it has reached."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiergen.demographics import AGE_BAND_EDGES, N_AGE_BANDS, age_band, stratum

EDGES = np.asarray(AGE_BAND_EDGES)


def by_binary_search(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(EDGES, np.asarray(age, dtype=np.float64), side="right") - 1


@given(st.lists(st.floats(min_value=0.0, max_value=200.0, width=32), min_size=1, max_size=50))
def test_band_is_the_last_edge_reached(ages: list[float]) -> None:
    for dtype in (np.float32, np.float64):
        a = np.asarray(ages, dtype=dtype)
        assert np.array_equal(age_band(a), by_binary_search(a))


def test_band_edges_and_their_neighbours() -> None:
    a = np.concatenate([EDGES, np.nextafter(EDGES[1:], -np.inf), [np.inf, 1e-9, 125.0]])
    assert np.array_equal(age_band(a), by_binary_search(a))
    ages = [0, 0.5, 1, 17.99, 18, 64.5, 65, 80, 110]
    assert age_band(ages).tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 5]
    assert age_band(np.array([3, 40], dtype=np.int64)).tolist() == [1, 3]


@pytest.mark.parametrize("bad", [[-1.0], [np.nan], [30.0, -0.5]])
def test_impossible_ages_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="age: impossible age"):
        age_band(bad)


def test_stratum_numbers_sex_then_band() -> None:
    s = stratum([0, 1, 1], [0.5, 0.5, 90.0])
    assert s.dtype == np.int32
    assert s.tolist() == [0, N_AGE_BANDS, 2 * N_AGE_BANDS - 1]
    with pytest.raises(ValueError, match="sex: codes must be 0"):
        stratum([2], [30.0])
