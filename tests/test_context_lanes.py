"""Context-aware sampling draws many visits side by side per thread: visits must not leak
into each other, the short-visit (interleaved) and long-visit paths must agree with the
seeded stream, and an exhausted category must be reported for the first visit it hits."""

from __future__ import annotations

import numpy as np
import pytest
from test_context import LINK_VISITS, LINK_VOCAB, core_module, make_cohort

from hiergen.context import build_context_tables, context_index
from hiergen.hierarchy import Hierarchy

# Category 401 has one code: a visit that repeats it is exhausted.
VOCAB = LINK_VOCAB + ("272.0", "272.4", "428.0", "428.22", "428.30")


@pytest.fixture(scope="module")
def index_and_hierarchy() -> tuple[object, Hierarchy]:
    hierarchy = Hierarchy.from_codes(VOCAB)
    visits = list(LINK_VISITS) + [["272.4", "428.0", "401.9"]] * 60 + [["272.0", "428.22"]] * 40
    cohort = make_cohort(visits, VOCAB)
    tables = build_context_tables(hierarchy, cohort, min_support=5, shrinkage=1.0)
    assert tables.n_tables > 0
    index = context_index(np.ones(hierarchy.n_codes), tables, core=core_module())
    return index, hierarchy


def random_visits(
    hierarchy: Hierarchy, lengths: list[int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = np.diff(hierarchy.offsets)
    multi = [c for c in range(hierarchy.n_categories) if sizes[c] > 1]
    cats = np.concatenate([rng.choice(multi, k) for k in lengths]).astype(np.int32)
    vo = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return cats, vo


def test_visits_drawn_together_equal_each_drawn_alone(index_and_hierarchy: tuple) -> None:
    index, hierarchy = index_and_hierarchy
    # Short visits (drawn side by side), the longest short one, and long ones (drawn alone).
    lengths = [int(x) for x in np.random.default_rng(5).integers(1, 9, 60)] + [32, 33, 48, 2, 1]
    cats, vo = random_visits(hierarchy, lengths, seed=6)
    together = index.sample_visits(cats, vo, seed=99, exhausted="repeat")
    assert np.array_equal(hierarchy.code_category[together], cats)
    for v in range(len(lengths)):
        # Visit v alone, at the same index (earlier visits empty): the same codes.
        b, e = int(vo[v]), int(vo[v + 1])
        alone_vo = np.concatenate([np.zeros(v + 1), [e - b]]).astype(np.int64)
        alone = index.sample_visits(cats[b:e], alone_vo, seed=99, exhausted="repeat")
        assert np.array_equal(alone, together[b:e]), f"visit {v} (length {e - b})"


def test_exhausted_category_names_the_first_failing_visit(index_and_hierarchy: tuple) -> None:
    index, hierarchy = index_and_hierarchy
    c401 = hierarchy.category_id("401")
    c250 = hierarchy.category_id("250")
    lengths = [2] * 40
    cats = np.full(80, c250, dtype=np.int32)
    cats[1::2] = hierarchy.category_id("585")
    cats[2 * 17 : 2 * 17 + 2] = c401  # visit 17 repeats 401 (one code)
    cats[2 * 31 : 2 * 31 + 2] = c401  # visit 31 too
    vo = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    with pytest.raises(ValueError, match="visit 17 repeats category"):
        index.sample_visits(cats, vo, seed=1, exhausted="error", threads=1)
    codes = index.sample_visits(cats, vo, seed=1, exhausted="repeat")
    assert (codes[2 * 17 : 2 * 17 + 2] == hierarchy.code_id("401.9")).all()
    assert np.array_equal(hierarchy.code_category[codes], cats)


def test_simd_lookups_give_the_scalar_output(index_and_hierarchy: tuple) -> None:
    index, hierarchy = index_and_hierarchy
    core = core_module()
    lengths = [int(x) for x in np.random.default_rng(8).integers(1, 40, 700)]
    cats, vo = random_visits(hierarchy, lengths, seed=9)
    was = core.simd()
    try:
        core.simd(False)
        assert core.simd() is False
        scalar = index.sample_visits(cats, vo, seed=3, threads=2)
        core.simd(True)  # stays off on a CPU without AVX2: the comparison still holds
        vector = index.sample_visits(cats, vo, seed=3, threads=2)
    finally:
        core.simd(was)
    assert np.array_equal(scalar, vector)
    assert not np.array_equal(scalar, index.sample_visits(cats, vo, seed=3, context=False))


def test_simd_switch_takes_a_bool_or_none() -> None:
    with pytest.raises(TypeError, match="enabled: expected True, False or None"):
        core_module().simd(1)


def test_tied_ranks_still_give_distinct_codes_for_a_repeated_category() -> None:
    # All ranks equal: draw order is position order, so the two 250s of [250, 585, 250] are
    # not adjacent in draw order, and the second must still avoid the first one's code.
    hierarchy = Hierarchy.from_codes(VOCAB)
    cohort = make_cohort(list(LINK_VISITS), VOCAB)
    tables = build_context_tables(hierarchy, cohort, min_support=5, shrinkage=1.0)
    core = core_module()
    base = core.CategoryIndex(hierarchy.offsets, np.ones(hierarchy.n_codes))
    tied = core.ContextIndex(
        base,
        tables.category,
        tables.context,
        tables.score,
        tables.weights,
        np.zeros(hierarchy.n_categories, dtype=np.int32),
    )
    c250, c585 = hierarchy.category_id("250"), hierarchy.category_id("585")
    n_visits = 400
    cats = np.tile(np.array([c250, c585, c250], dtype=np.int32), n_visits)
    vo = np.arange(0, 3 * n_visits + 1, 3, dtype=np.int64)
    codes = tied.sample_visits(cats, vo, seed=4, exhausted="error").reshape(n_visits, 3)
    assert (codes[:, 0] != codes[:, 2]).all()
    assert np.array_equal(hierarchy.code_category[codes[:, 0]], np.full(n_visits, c250))
