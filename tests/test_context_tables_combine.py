"""The numpy reference's pooled contexts (``combine``): valid draws, their law, bad values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_context import check_visits, random_case

from hiergen.context import build_context_tables, sample_visits_reference
from hiergen.context.reference import COMBINE_MODES
from hiergen.context.tables import ContextTables
from hiergen.weighting import build_weights


@settings(max_examples=30, deadline=None)
@given(st.data(), st.sampled_from(COMBINE_MODES), st.integers(2, 3))
def test_combined_contexts_keep_the_visit_properties(
    data: st.DataObject, mode: str, k: int
) -> None:
    hierarchy, cohort, cats, vo = random_case(data)
    tables = build_context_tables(hierarchy, cohort, min_support=1, shrinkage=1.0)
    base = build_weights("smoothed", hierarchy, cohort).weights
    codes = sample_visits_reference(base, tables, cats, vo, seed=data.draw(st.integers(0, 99)),
                                    combine=k, combine_mode=mode)
    check_visits(hierarchy, cats, vo, codes)


def _two_context_case() -> tuple[ContextTables, np.ndarray, np.ndarray, np.ndarray]:
    """Categories 0 and 1 (one code each) give two tables for category 2 (codes 2, 3, 4)."""
    offsets = np.array([0, 1, 2, 5], dtype=np.int64)
    t0, t1 = [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]
    tables = ContextTables(
        offsets=offsets,
        category=np.array([2, 2], dtype=np.int32),
        context=np.array([0, 1], dtype=np.int32),
        support=np.array([50, 50], dtype=np.int64),
        score=np.array([2.0, 1.0]),
        weights=np.array(t0 + t1),
        rank=np.array([0, 1, 2], dtype=np.int32),
    )
    base = np.array([1.0, 1.0, 0.5, 0.25, 0.25])
    n = 20_000
    cats = np.tile(np.array([0, 1, 2], dtype=np.int32), n)
    vo = np.arange(0, cats.size + 1, 3, dtype=np.int64)
    return tables, base, cats, vo


@pytest.mark.parametrize(
    ("mode", "combine", "expected"),
    [
        ("product", 1, [0.6, 0.3, 0.1]),  # the best-scoring table alone
        ("product", 2, [0.12 / 0.24, 0.06 / 0.24, 0.06 / 0.24]),
        ("bayes", 2, [0.24 / 0.72, 0.24 / 0.72, 0.24 / 0.72]),
        ("geometric", 2, None),
    ],
)
def test_combined_law(mode: str, combine: int, expected: list[float] | None) -> None:
    tables, base, cats, vo = _two_context_case()
    codes = sample_visits_reference(base, tables, cats, vo, seed=4, combine=combine,
                                    combine_mode=mode)
    got = np.bincount(codes.reshape(-1, 3)[:, 2] - 2, minlength=3) / (cats.size // 3)
    if expected is None:
        g = np.sqrt(np.array([0.6 * 0.2, 0.3 * 0.2, 0.1 * 0.6]))
        expected = list(g / g.sum())
    want = np.asarray(expected)
    assert np.abs(got - want).max() < 4 * np.sqrt(0.25 / (cats.size // 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"combine": 0}, "combine"), ({"combine": 2, "combine_mode": "sum"}, "combine_mode")],
)
def test_bad_combine_parameters(kwargs: dict[str, object], match: str) -> None:
    tables, base, cats, vo = _two_context_case()
    with pytest.raises(ValueError, match=match):
        sample_visits_reference(base, tables, cats[:3], vo[:2], seed=0, **kwargs)  # type: ignore[arg-type]
