"""Context-aware Stage 2: table building, the numpy reference and the compiled sampler."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiergen.cohort import Cohort
from hiergen.context import (
    ContextTables,
    build_context_tables,
    context_index,
    load_context_tables,
    sample_visits_reference,
    save_context_tables,
)
from hiergen.errors import ModelError
from hiergen.hierarchy import Hierarchy
from hiergen.weighting import build_weights


def make_cohort(visits: list[list[str]], vocab: tuple[str, ...]) -> Cohort:
    index = {c: i for i, c in enumerate(vocab)}
    codes = np.asarray([index[c] for v in visits for c in v], dtype=np.int32)
    vo = np.concatenate([[0], np.cumsum([len(v) for v in visits])]).astype(np.int64)
    n = len(visits)
    return Cohort(
        patient_ids=np.arange(n),
        patient_offsets=np.arange(n + 1, dtype=np.int64),
        visit_offsets=vo,
        codes=codes,
        vocab=vocab,
        sex=np.zeros(n, dtype=np.int8),
        age=np.full(n, 50.0, dtype=np.float32),
    )


# 250.40 (diabetes, renal) always comes with 585.3 (CKD stage 3), 250.00 with 585.9; category
# 250 is more frequent than 585, so it is drawn first and becomes the context of 585.
LINK_VOCAB = ("250.00", "250.40", "585.3", "585.9", "401.9")
LINK_VISITS = (
    [["250.40", "585.3"]] * 100 + [["250.00", "585.9"]] * 100 + [["250.00", "401.9"]] * 50
)


@pytest.fixture(scope="module")
def link() -> tuple[Hierarchy, Cohort]:
    hierarchy = Hierarchy.from_codes(LINK_VOCAB)
    return hierarchy, make_cohort(LINK_VISITS, LINK_VOCAB)


def core_module() -> Any:
    name = os.environ.get("HIERGEN_TEST_CORE_MODULE", "hiergen._core")
    try:
        mod = importlib.import_module(name)
    except ImportError:
        pytest.skip(f"compiled module {name} is not built")
    if not hasattr(mod, "ContextIndex"):
        pytest.skip(f"compiled module {name} has no ContextIndex (rebuild hiergen)")
    return mod


def link_share(hierarchy: Hierarchy, codes: np.ndarray) -> float:
    """Among synthetic visits holding 250.40 and a code of 585: share with 585.3."""
    pairs = codes.reshape(-1, 2)
    with_585 = (hierarchy.code_category[pairs] == hierarchy.category_id("585")).any(axis=1)
    with_a = (pairs == hierarchy.code_id("250.40")).any(axis=1) & with_585
    with_b = (pairs == hierarchy.code_id("585.3")).any(axis=1)
    return float((with_a & with_b).sum() / max(with_a.sum(), 1))


def link_inputs(hierarchy: Hierarchy, cohort: Cohort) -> tuple[np.ndarray, np.ndarray]:
    # Stage-1 oracle repeated 20 times: 5,000 visits, about 1,600 with 250.40 and 585.
    cats = np.tile(cohort.category_ids_in(hierarchy), 20).astype(np.int32)
    vo = np.arange(0, cats.size + 1, 2, dtype=np.int64)
    return cats, vo


def test_tables_capture_the_link(link: tuple[Hierarchy, Cohort]) -> None:
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=0.0)
    cat_585 = hierarchy.category_id("585")
    table = tables.table(cat_585, hierarchy.code_id("250.40"))
    assert table.tolist() == [1.0, 0.0]  # 585.3, 585.9
    # 250 is the more frequent category: drawn first.
    assert tables.rank[hierarchy.category_id("250")] < tables.rank[cat_585]
    with pytest.raises(KeyError, match="no context table"):
        tables.table(cat_585, hierarchy.code_id("401.9"))


def test_pair_chunks_cover_every_pair_once() -> None:
    from hiergen.context.tables import ordered_pairs, pair_chunks

    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 9, size=400)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, 50, size=int(offsets[-1])).astype(np.int64)
    whole = np.stack(ordered_pairs(ids, offsets), 1)
    # 30 pairs a chunk: a visit of 8 rows (56 pairs) makes a chunk alone.
    parts = []
    for visit, a, b in pair_chunks(ids, offsets, max_pairs=30):
        assert visit.size <= 30 or np.unique(visit).size == 1
        parts.append(np.stack([visit, a, b], 1))
    got = np.concatenate(parts)
    key = lambda x: np.lexsort(x.T[::-1])  # noqa: E731
    assert got.shape == whole.shape
    assert (got[key(got)] == whole[key(whole)]).all()


def test_tables_do_not_depend_on_the_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    import hiergen.context.tables as tables_module

    rng = np.random.default_rng(5)
    visits = [list(rng.choice(ORDER_VOCAB, size=rng.integers(1, 5), replace=False))
              for _ in range(600)]
    hierarchy = Hierarchy.from_codes(ORDER_VOCAB)
    cohort = make_cohort(visits, ORDER_VOCAB)
    whole = build_context_tables(hierarchy, cohort, min_support=5)
    monkeypatch.setattr(tables_module, "PAIRS_PER_CHUNK", 7)
    chunked = build_context_tables(hierarchy, cohort, min_support=5)
    assert whole.n_tables > 0
    for name in ("category", "context", "support", "score", "weights", "rank"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name


# 585's codes say more about 250's code than the reverse (KL log 3 and log 1.5 against log 2
# twice), and 401.9 points at 250.00; by frequency 250 (300 visits) is drawn first.
ORDER_VOCAB = ("250.00", "250.40", "585.3", "585.9", "401.9")
ORDER_VISITS = (
    [["250.40", "585.3"]] * 100 + [["250.00", "585.9"]] * 100 + [["250.00", "401.9"]] * 100
)


def test_pairwise_order_draws_the_more_telling_category_first() -> None:
    hierarchy = Hierarchy.from_codes(ORDER_VOCAB)
    cohort = make_cohort(ORDER_VISITS, ORDER_VOCAB)
    cat = {name: hierarchy.category_id(name) for name in ("250", "585", "401")}
    by_freq = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=0.0)
    assert by_freq.rank[cat["250"]] < by_freq.rank[cat["585"]] < by_freq.rank[cat["401"]]
    learned = build_context_tables(
        hierarchy, cohort, min_support=10, shrinkage=0.0, order="pairwise"
    )
    # Balances: 401 +40.5, 585 +150 - 138.6, 250 -51.9: 401, then 585, then 250.
    assert learned.rank[cat["401"]] < learned.rank[cat["585"]] < learned.rank[cat["250"]]
    assert learned.params["order"] == "pairwise"
    # Same tables, only the draw order differs.
    assert np.array_equal(learned.category, by_freq.category)
    assert np.array_equal(learned.weights, by_freq.weights)


def test_greedy_acyclic_order_keeps_the_heavy_edges_forward() -> None:
    from hiergen.context.tables import _greedy_acyclic_order

    # A cycle 0 -> 1 -> 2 -> 0 with the light edge 2 -> 0: breaking it there keeps 5 + 4.
    src, dst, w = np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([5.0, 4.0, 1.0])
    assert _greedy_acyclic_order(src, dst, w, np.array([2, 1, 0])).tolist() == [0, 1, 2]
    # No edges (a self-loop does not count): the tie order.
    loop = np.array([1])
    assert _greedy_acyclic_order(loop, loop, np.array([9.0]), np.array([2, 0, 1])).tolist() == [
        2, 0, 1]


def test_reference_reproduces_the_link(link: tuple[Hierarchy, Cohort]) -> None:
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=0.0)
    base = build_weights("frequency", hierarchy, cohort).weights
    cats, vo = link_inputs(hierarchy, cohort)
    with_ctx = sample_visits_reference(base, tables, cats, vo, seed=3)
    free = sample_visits_reference(base, tables, cats, vo, seed=3, use_context=False)
    assert link_share(hierarchy, with_ctx) == 1.0
    # Context-free: 585.3 is half of category 585 whatever the diabetes code (n ~ 2,000).
    assert abs(link_share(hierarchy, free) - 0.5) < 0.06
    assert (hierarchy.code_category[with_ctx] == cats).all()


def test_compiled_reproduces_the_link(link: tuple[Hierarchy, Cohort]) -> None:
    core = core_module()
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=0.0)
    base = build_weights("frequency", hierarchy, cohort).weights
    index = context_index(base, tables, core=core)
    assert index.n_tables == tables.n_tables
    cats, vo = link_inputs(hierarchy, cohort)
    with_ctx = index.sample_visits(cats, vo, seed=3)
    free = index.sample_visits(cats, vo, seed=3, context=False)
    assert link_share(hierarchy, with_ctx) == 1.0
    assert abs(link_share(hierarchy, free) - 0.5) < 0.06
    # context=False is exactly the context-free index.
    assert (free == index.index.sample_visits(cats, vo, seed=3)).all()


def random_case(data: st.DataObject) -> tuple[Hierarchy, Cohort, np.ndarray, np.ndarray]:
    n_cat = data.draw(st.integers(1, 5))
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=n_cat, max_size=n_cat))
    vocab = tuple(f"{100 + c}.{j}" for c in range(n_cat) for j in range(sizes[c]))
    visits = data.draw(
        st.lists(
            st.lists(st.sampled_from(vocab), min_size=1, max_size=6, unique=True),
            min_size=1,
            max_size=40,
        )
    )
    hierarchy = Hierarchy.from_codes(vocab)
    cohort = make_cohort(visits, vocab)
    cats = cohort.category_ids_in(hierarchy).astype(np.int32)
    return hierarchy, cohort, cats, cohort.visit_offsets


def check_visits(hierarchy: Hierarchy, cats: np.ndarray, vo: np.ndarray, codes: np.ndarray) -> None:
    assert (hierarchy.code_category[codes] == cats).all()
    sizes = np.diff(hierarchy.offsets)
    for v in range(vo.size - 1):
        got, want = codes[vo[v] : vo[v + 1]], cats[vo[v] : vo[v + 1]]
        # Distinct within a visit while the category has codes left (weights are positive).
        for c in np.unique(want):
            k = int((want == c).sum())
            drawn = got[want == c]
            assert np.unique(drawn).size == min(k, int(sizes[c]))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_reference_properties(data: st.DataObject) -> None:
    hierarchy, cohort, cats, vo = random_case(data)
    tables = build_context_tables(hierarchy, cohort, min_support=1, shrinkage=1.0)
    base = build_weights("smoothed", hierarchy, cohort).weights
    codes = sample_visits_reference(base, tables, cats, vo, seed=data.draw(st.integers(0, 99)))
    check_visits(hierarchy, cats, vo, codes)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_compiled_properties(data: st.DataObject) -> None:
    core = core_module()
    hierarchy, cohort, cats, vo = random_case(data)
    tables = build_context_tables(hierarchy, cohort, min_support=1, shrinkage=1.0)
    base = build_weights("smoothed", hierarchy, cohort).weights
    index = context_index(base, tables, core=core)
    seed = data.draw(st.integers(0, 2**32))
    codes = index.sample_visits(cats, vo, seed=seed)
    check_visits(hierarchy, cats, vo, codes)
    assert (codes == index.sample_visits(cats, vo, seed=seed)).all()


def test_compiled_thread_count_invariance(link: tuple[Hierarchy, Cohort]) -> None:
    core = core_module()
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=1.0)
    index = context_index(build_weights("frequency", hierarchy, cohort).weights, tables, core=core)
    cats = np.tile(cohort.category_ids_in(hierarchy), 400).astype(np.int32)  # 200k codes
    vo = np.arange(0, cats.size + 1, 2, dtype=np.int64)
    one = index.sample_visits(cats, vo, seed=11, threads=1)
    for threads in (2, 3, 8):
        assert (index.sample_visits(cats, vo, seed=11, threads=threads) == one).all()
    assert not (index.sample_visits(cats, vo, seed=12, threads=1) == one).all()


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("min_support", -1, "min_support must be an integer >= 1"),
        ("min_support", 2.5, "min_support must be an integer"),
        ("shrinkage", -0.5, "shrinkage must be a finite number >= 0"),
        ("max_tables", -3, "max_tables must be an integer >= 0"),
        ("order", "alphabetical", "order must be one of"),
    ],
)
def test_bad_parameters(link: tuple[Hierarchy, Cohort], param: str, value: Any, match: str) -> None:
    hierarchy, cohort = link
    with pytest.raises(ValueError, match=match):
        build_context_tables(hierarchy, cohort, **{param: value})


def test_bad_tables_and_inputs(link: tuple[Hierarchy, Cohort]) -> None:
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=0.0)
    bad_context = np.array(tables.context, copy=True)
    bad_context[0] = hierarchy.n_codes + 7  # an unknown context code
    with pytest.raises(ModelError, match="context code ids out of range"):
        ContextTables(
            tables.offsets, tables.category, bad_context, tables.support, tables.score,
            tables.weights, tables.rank,
        )
    base = build_weights("frequency", hierarchy, cohort).weights
    cats, vo = link_inputs(hierarchy, cohort)
    with pytest.raises(ValueError, match="sweeps"):
        sample_visits_reference(base, tables, cats, vo, seed=1, sweeps=-1)
    with pytest.raises(ValueError, match="categories: id"):
        sample_visits_reference(base, tables, cats + 10, vo, seed=1)


def test_compiled_bad_arguments(link: tuple[Hierarchy, Cohort]) -> None:
    core = core_module()
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10, shrinkage=0.0)
    base = core.CategoryIndex(
        hierarchy.offsets, build_weights("frequency", hierarchy, cohort).weights
    )
    args = dict(
        category=tables.category, context=tables.context, score=tables.score,
        weights=tables.weights, rank=tables.rank,
    )
    with pytest.raises(ValueError, match=r"context\[0\] = 99 is not a code id"):
        core.ContextIndex(base, **{**args, "context": np.full(tables.n_tables, 99, np.int32)})
    with pytest.raises(ValueError, match="rank: expected"):
        core.ContextIndex(base, **{**args, "rank": np.zeros(1, np.int32)})
    with pytest.raises(ValueError, match="weights"):
        core.ContextIndex(base, **{**args, "weights": tables.weights[:-1]})
    index = core.ContextIndex(base, **args)
    cats, vo = link_inputs(hierarchy, cohort)
    with pytest.raises(ValueError, match="out of range"):
        index.sample_visits(cats + 50, vo, seed=1)
    with pytest.raises(ValueError, match="visit_offsets"):
        index.sample_visits(cats, vo[:-1], seed=1)


def test_storage_round_trip(link: tuple[Hierarchy, Cohort], tmp_path: Path) -> None:
    hierarchy, cohort = link
    tables = build_context_tables(hierarchy, cohort, min_support=10)
    save_context_tables(tables, tmp_path)
    back = load_context_tables(tmp_path)
    assert back.params == tables.params
    for name in ("category", "context", "support", "score", "weights", "rank", "offsets"):
        assert np.array_equal(getattr(back, name), getattr(tables, name)), name
    (tmp_path / "context.json").write_text('{"format": "other"}')
    with pytest.raises(ModelError, match="not hiergen-context-tables"):
        load_context_tables(tmp_path)


def test_weighting_plugin(link: tuple[Hierarchy, Cohort]) -> None:
    hierarchy, cohort = link
    result = build_weights("context", hierarchy, cohort, {"min_support": 10})
    tables = getattr(result, "tables", None)
    assert isinstance(tables, ContextTables) and tables.n_tables > 0
    assert result.params["min_support"] == 10
    assert result.weights.shape[1] == hierarchy.n_codes
    with pytest.raises(ValueError, match="min_support"):
        build_weights("context", hierarchy, cohort, {"min_support": -1})


def test_compiled_golden_values(link: tuple[Hierarchy, Cohort]) -> None:
    # Bit-exact output for a fixed seed (unchanged by the issue-6/8 speed work: the same
    # values as the first compiled version). A change here changes every seeded result.
    core = core_module()
    hierarchy, cohort = link
    index = context_index(np.ones(hierarchy.n_codes), build_context_tables(
        hierarchy, cohort, min_support=10), core=core)
    cats = np.array([1, 0, 0, 1, 2, 0, 1, 1, 0], dtype=np.int32)
    got = index.sample_visits(cats, np.array([0, 2, 5, 9]), seed=2024).tolist()
    assert got == [2, 1, 1, 2, 3, 1, 2, 2, 0]
    # A visit longer than the counting-sort limit takes the std::sort path.
    big = np.random.default_rng(0).integers(0, hierarchy.n_categories, 100).astype(np.int32)
    got = index.sample_visits(big, np.array([0, 100]), seed=7).tolist()[:20]
    assert got == [4, 2, 2, 0, 1, 1, 0, 0, 1, 3, 2, 4, 2, 2, 4, 4, 2, 2, 2, 4]


def test_compiled_long_visits_keep_the_properties(link: tuple[Hierarchy, Cohort]) -> None:
    core = core_module()
    hierarchy, cohort = link
    index = context_index(np.ones(hierarchy.n_codes), build_context_tables(
        hierarchy, cohort, min_support=10), core=core)
    rng = np.random.default_rng(1)
    lengths = [3, 70, 1, 200, 5]
    cats = np.concatenate([rng.integers(0, hierarchy.n_categories, k) for k in lengths])
    vo = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    codes = index.sample_visits(cats.astype(np.int32), vo, seed=3)
    assert np.array_equal(hierarchy.code_category[codes], cats)
    # A visit's draw depends only on (seed, visit index) and its own categories.
    alone = index.sample_visits(cats.astype(np.int32), vo, seed=3, threads=2)
    assert np.array_equal(alone, codes)
    cats2 = cats.copy()
    cats2[:3] = cats2[:3][::-1]
    again = index.sample_visits(cats2.astype(np.int32), vo, seed=3)
    assert np.array_equal(again[3:], codes[3:])
