"""Context-aware sampling draws visits of one length in groups per thread: visits must not
leak into each other, the short-visit (grouped) and long-visit paths must agree with the
seeded stream, an exhausted category must be reported for the first visit it hits, the
lookups must find the best table exactly, and the SIMD lookups must give the scalar output."""

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
    # Short visits (drawn in groups), the longest short one, and long ones (drawn alone).
    lengths = [int(x) for x in np.random.default_rng(5).integers(1, 9, 60)] + [
        32, 33, 48, 64, 65, 90, 2, 1]
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


def check_best_tables_are_found(
    n_targets: int, tables_per_context: list[int], n_visits: int, simd: bool, seed: int
) -> None:
    """Target categories 0 .. n_targets - 1 of 50 codes, one one-code category per context
    code; context code j is the context of tables_per_context[j] random targets, each table a
    point mass on its own code, so every drawn code shows which table was used. Expected: the
    highest-scoring table among the visit's context codes, else the base table (a point
    mass on the target's first code)."""
    rng = np.random.default_rng(seed)
    n_ctx, width = len(tables_per_context), 50
    sizes = np.array([width] * n_targets + [1] * n_ctx)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    base_w = np.zeros(int(offsets[-1]))
    base_w[offsets[:-1]] = 1.0
    core = core_module()
    base = core.CategoryIndex(offsets, base_w)
    ctx_code = offsets[n_targets : n_targets + n_ctx]
    category = np.concatenate(
        [rng.choice(n_targets, k, replace=False) for k in tables_per_context]
    ).astype(np.int32)
    context = np.repeat(ctx_code, tables_per_context).astype(np.int32)
    order = rng.permutation(category.size)  # tables in no particular order
    category, context = category[order], context[order]
    score = rng.permutation(category.size).astype(np.float64)
    mass = 1 + rng.integers(0, width - 1, category.size)
    weights = np.zeros((category.size, width))
    weights[np.arange(category.size), mass] = 1.0
    rank = np.concatenate([n_ctx + np.arange(n_targets), np.arange(n_ctx)]).astype(np.int32)
    index = core.ContextIndex(base, category, context, score, weights.ravel(), rank)

    visits, expected = [], []
    for _ in range(n_visits):
        ctx_cats = n_targets + rng.choice(n_ctx, int(rng.integers(0, min(n_ctx, 12) + 1)),
                                          replace=False)
        targets = rng.choice(n_targets, int(rng.integers(1, min(n_targets, 3) + 1)),
                             replace=False)
        cats = list(rng.permutation(np.concatenate([ctx_cats, targets])))
        visits.append(cats)
        codes = {int(offsets[c]) for c in ctx_cats}
        want = []
        for c in cats:
            if c >= n_targets:
                want.append(int(offsets[c]))
                continue
            hits = [t for t in np.flatnonzero(category == c) if int(context[t]) in codes]
            t_best = max(hits, key=lambda t: score[t], default=None)
            want.append(int(offsets[c]) + (0 if t_best is None else int(mass[t_best])))
        expected.append(want)
    flat = np.concatenate(visits).astype(np.int32)
    vo = np.concatenate([[0], np.cumsum([len(v) for v in visits])]).astype(np.int64)
    was = core.simd()
    try:
        core.simd(simd)
        got = index.sample_visits(flat, vo, seed=2, threads=2)
    finally:
        core.simd(was)
    assert np.array_equal(got, np.concatenate(expected))


@pytest.mark.parametrize("simd", [False, True])
def test_the_best_context_table_is_found_among_thousands(simd: bool) -> None:
    # Two targets, 3,000 context codes of 1 or 2 tables each (3,000 tables in all).
    tables_per_context = list(np.random.default_rng(10).integers(1, 3, 3000))
    check_best_tables_are_found(2, tables_per_context, 600, simd, seed=11)


@pytest.mark.parametrize("simd", [False, True])
def test_the_best_context_table_is_found_whatever_the_context_count(simd: bool) -> None:
    # One lookup region per context code, of a size that grows with its tables, up to one
    # slot per category for the codes that are the context of (nearly) every target.
    tables_per_context = [1, 2, 3, 4, 5, 7, 9, 16, 17, 33, 64, 65, 100, 150, 200, 250, 299, 300]
    check_best_tables_are_found(300, tables_per_context, 800, simd, seed=12)


def test_draw_order_paths_agree_whatever_the_rank_range() -> None:
    # The draw order is computed from 16-bit keys (ranks below 2,047), 32-bit keys (below
    # 2^23) or a sort (larger ranks); scaling the ranks keeps their order, so all three must
    # give the same codes.
    rng = np.random.default_rng(3)
    n_cat, width = 300, 6
    offsets = np.arange(0, n_cat * width + 1, width, dtype=np.int64)
    core = core_module()
    base = core.CategoryIndex(offsets, rng.random(n_cat * width) + 0.1)
    n_tab = 2000
    category = rng.integers(0, n_cat, n_tab).astype(np.int32)
    context = rng.integers(0, n_cat * width, n_tab).astype(np.int32)
    keep = np.unique(category.astype(np.int64) * n_cat * width + context, return_index=True)[1]
    category, context = category[keep], context[keep]
    score = rng.random(category.size)
    weights = rng.random(category.size * width) + 0.01
    rank = rng.permutation(n_cat).astype(np.int64)
    lengths = list(rng.integers(1, 33, 400)) + [40, 70]
    cats = np.concatenate([rng.choice(n_cat, int(k)) for k in lengths]).astype(np.int32)
    vo = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    outs = []
    for scale in (1, 1000, 50_000):  # max rank 299, 299,000, 14,950,000 (> 2^23)
        index = core.ContextIndex(base, category, context, score, weights,
                                  (rank * scale).astype(np.int32))
        outs.append(index.sample_visits(cats, vo, seed=5, exhausted="repeat"))
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], outs[2])
    # And the order matters: reversed ranks give other codes.
    index = core.ContextIndex(base, category, context, score, weights,
                              (n_cat - 1 - rank).astype(np.int32))
    assert not np.array_equal(outs[0], index.sample_visits(cats, vo, seed=5, exhausted="repeat"))


def test_more_tables_than_the_lookup_can_index_is_a_clear_error() -> None:
    # A lookup slot holds the category and the table index in 32 bits: with 65,535
    # categories, 16 bits are left, for 65,536 tables.
    n_cat = 65_535
    core = core_module()
    base = core.CategoryIndex(np.arange(n_cat + 1, dtype=np.int64), np.ones(n_cat))
    n_tab = 65_537
    category = (np.arange(n_tab) % n_cat).astype(np.int32)
    context = (np.arange(n_tab) // n_cat).astype(np.int32)
    rank = np.arange(n_cat, dtype=np.int32)
    with pytest.raises(ValueError, match="65537 tables for 65535 categories; at most 65536 fit"):
        core.ContextIndex(base, category, context, np.ones(n_tab), np.ones(n_tab), rank)
    index = core.ContextIndex(base, category[:-1], context[:-1], np.ones(n_tab - 1),
                              np.ones(n_tab - 1), rank)
    assert index.n_tables == n_tab - 1
