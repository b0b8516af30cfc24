"""Weighting strategies: the weight arrays, parameter checks, and the sampled distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiergen.cohort import Cohort
from hiergen.demographics import N_STRATA, stratum
from hiergen.errors import DataError, PluginError
from hiergen.hierarchy import Hierarchy
from hiergen.plugins import CodeWeights, WeightingSpec
from hiergen.weighting import (
    block_sums,
    build_frequency,
    build_smoothed,
    build_stratified,
    build_tempered,
    build_uniform,
    build_weights,
    parse_params,
    validate_code_weights,
)
from hiergen.weighting.smoothed import subcategory_key

CODES = ("250.00", "250.01", "250.02", "250.10", "250.11", "401.1", "401.9", "042", "V30.00",
         "V30.01")


def category(code: str) -> str:
    return code.split(".")[0]


HIER = Hierarchy.from_codes(CODES, category_of=category)


def make_cohort(visits: list[tuple[int, float, list[str]]]) -> Cohort:
    """One patient per visit: (sex, age, codes)."""
    vocab = tuple(sorted({c for _, _, codes in visits for c in codes}))
    index = {c: i for i, c in enumerate(vocab)}
    lengths = [len(codes) for _, _, codes in visits]
    vo = np.zeros(len(visits) + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    return Cohort(
        patient_ids=np.arange(len(visits)),
        patient_offsets=np.arange(len(visits) + 1, dtype=np.int64),
        visit_offsets=vo,
        codes=np.asarray([index[c] for _, _, codes in visits for c in codes], dtype=np.int32),
        vocab=vocab,
        sex=np.asarray([s for s, _, _ in visits], dtype=np.int8),
        age=np.asarray([a for _, a, _ in visits], dtype=np.float32),
    )


# 250.00 x6, 250.01 x2, 250.10 x1, 401.9 x8, 401.1 x1; 042, V30.* never seen.
COHORT = make_cohort(
    [(0, 50.0, ["250.00", "401.9"])] * 5
    + [(1, 70.0, ["250.00", "250.01", "401.9"])]
    + [(1, 30.0, ["250.01", "250.10", "401.9"])]
    + [(0, 85.0, ["401.9"])]
    + [(1, 85.0, ["401.1"])]
)


def w(code: str, weights: CodeWeights, row: int = 0) -> float:
    return float(weights.weights[row, HIER.code_id(code)])


def assert_valid(weights: CodeWeights, hierarchy: Hierarchy = HIER) -> None:
    assert weights.weights.dtype == np.float64
    assert np.isfinite(weights.weights).all() and (weights.weights >= 0).all()
    np.testing.assert_allclose(block_sums(weights.weights, hierarchy.offsets), 1.0, rtol=1e-12)


# --- weight arrays -------------------------------------------------------------------------
def test_uniform() -> None:
    out = build_uniform(HIER, None)
    assert out.weights.shape == (1, HIER.n_codes) and not out.stratified
    assert_valid(out)
    assert w("250.00", out) == pytest.approx(1 / 5)
    assert w("401.1", out) == pytest.approx(1 / 2)
    assert w("042", out) == 1.0


def test_frequency_is_the_share_of_the_category_count() -> None:
    out = build_frequency(HIER, COHORT)
    assert_valid(out)
    assert w("250.00", out) == pytest.approx(6 / 9)
    assert w("250.01", out) == pytest.approx(2 / 9)
    assert w("250.10", out) == pytest.approx(1 / 9)
    assert w("250.02", out) == 0.0
    assert w("401.9", out) == pytest.approx(8 / 9)
    assert w("V30.00", out) == w("V30.01", out) == 0.5  # never-seen category: uniform


def test_tempered() -> None:
    assert_valid(build_tempered(HIER, COHORT, alpha=0.5))
    np.testing.assert_allclose(
        build_tempered(HIER, COHORT, alpha=1.0).weights, build_frequency(HIER, COHORT).weights
    )
    half = build_tempered(HIER, COHORT, alpha=0.5)
    assert w("250.00", half) / w("250.01", half) == pytest.approx(math.sqrt(3))
    assert w("250.02", half) == 0.0
    flat = build_tempered(HIER, COHORT, alpha=0.0)
    assert [w(c, flat) for c in ("250.00", "250.01", "250.10", "250.02")] == pytest.approx(
        [1 / 3, 1 / 3, 1 / 3, 0.0]
    )
    assert half.params == {"alpha": 0.5}


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), "x", True, None])
def test_tempered_rejects_bad_alpha(alpha: object) -> None:
    with pytest.raises(ValueError, match="'tempered': parameter alpha must be a finite number"):
        build_tempered(HIER, COHORT, alpha=alpha)  # type: ignore[arg-type]


def test_smoothed_additive() -> None:
    out = build_smoothed(HIER, COHORT, prior=0.5)
    assert_valid(out)
    assert w("250.00", out) == pytest.approx((6 + 0.5) / (9 + 2.5))
    assert w("250.02", out) == pytest.approx(0.5 / (9 + 2.5))
    assert (out.weights > 0).all()
    zero = build_smoothed(HIER, COHORT, prior=0.0)
    np.testing.assert_allclose(zero.weights, build_frequency(HIER, COHORT).weights)
    assert out.params == {"prior": 0.5, "method": "additive"}


def test_smoothed_hierarchical_favours_unseen_codes_with_common_siblings() -> None:
    out = build_smoothed(HIER, COHORT, prior=1.0, method="hierarchical")
    assert_valid(out)
    assert (out.weights > 0).all()
    # 250.02 (unseen, in the common node 250.0) beats 250.11 (unseen, node 250.1 seen once).
    assert w("250.02", out) > w("250.11", out) > 0
    # Node 250.0: counts 8 + prior 1 over (9 + 2 nodes); 5 codes x prior 1 pseudo-visits.
    base_2502 = (8 + 1) / (9 + 2) / 3
    assert w("250.02", out) == pytest.approx(5 * base_2502 / (9 + 5))
    np.testing.assert_allclose(
        build_smoothed(HIER, COHORT, prior=0.0, method="hierarchical").weights,
        build_frequency(HIER, COHORT).weights,
    )


def test_subcategory_key() -> None:
    assert subcategory_key("250.01", "250") == "250.0"
    assert subcategory_key("401.9", "401") == "401"
    assert subcategory_key("042", "042") == "042"
    assert subcategory_key("E888.9", "E888") == "E888"
    assert subcategory_key("V30.01", "V30") == "V30.0"


def test_smoothed_rejects_bad_params() -> None:
    with pytest.raises(ValueError, match="parameter prior must be a finite number >= 0, got -1"):
        build_smoothed(HIER, COHORT, prior=-1)
    with pytest.raises(ValueError, match="method must be one of additive, hierarchical"):
        build_smoothed(HIER, COHORT, method="bayes")


def test_stratified_uses_own_counts_where_supported_and_pooled_elsewhere() -> None:
    out = build_stratified(HIER, COHORT, min_visits=5)
    assert out.weights.shape == (N_STRATA, HIER.n_codes) and out.stratified
    assert_valid(out)
    pooled = build_frequency(HIER, COHORT).weights[0]
    male_40_64 = int(stratum([0], [50.0])[0])  # 5 visits with 250.00 and 401.9
    female_80 = int(stratum([1], [85.0])[0])  # 1 visit: 401.1
    assert w("250.00", out, male_40_64) == 1.0
    assert w("401.9", out, male_40_64) == 1.0
    for s in range(N_STRATA):
        if s != male_40_64:
            np.testing.assert_allclose(out.weights[s], pooled)
    low = build_stratified(HIER, COHORT, min_visits=1)
    assert w("401.1", low, female_80) == 1.0 and w("401.9", low, female_80) == 0.0
    # 250.* was never seen in that stratum: pooled even with min_visits=1 (and 0).
    for threshold in (0, 1):
        rows = build_stratified(HIER, COHORT, min_visits=threshold).weights[female_80]
        assert rows[HIER.code_id("250.00")] == pytest.approx(pooled[HIER.code_id("250.00")])


def test_stratified_rejects_bad_params() -> None:
    with pytest.raises(ValueError, match="min_visits must be an integer >= 0, got -1"):
        build_stratified(HIER, COHORT, min_visits=-1)
    with pytest.raises(ValueError, match="min_visits must be an integer >= 0, got 2.5"):
        build_stratified(HIER, COHORT, min_visits=2.5)  # type: ignore[arg-type]


def test_strategies_need_a_cohort() -> None:
    with pytest.raises(ValueError, match="'frequency': needs a training cohort"):
        build_frequency(HIER, None)


def test_cohort_code_outside_the_hierarchy_is_a_data_error() -> None:
    cohort = make_cohort([(0, 40.0, ["250.00", "999.9"])])
    with pytest.raises(DataError, match="'999.9' is not in the hierarchy") as info:
        build_frequency(HIER, cohort)
    assert info.value.hint and "Hierarchy.from_codes" in info.value.hint


# --- lookup by name, params and output checks --------------------------------------------------
def test_build_weights_fills_defaults_and_checks_names() -> None:
    out = build_weights("smoothed", HIER, COHORT)
    assert out.params == {"prior": 0.5, "method": "additive"}
    assert build_weights("tempered", HIER, COHORT, {"alpha": 2.0}).params == {"alpha": 2.0}
    with pytest.raises(ValueError, match="unknown parameter 'alpah'; accepted: alpha"):
        build_weights("tempered", HIER, COHORT, {"alpah": 2.0})
    with pytest.raises(PluginError, match="unknown weighting 'nope'"):
        build_weights("nope", HIER, COHORT)


def test_parse_params_types_after_defaults() -> None:
    spec = WeightingSpec("s", build_smoothed, "", {"prior": 0.5, "method": "additive"})
    assert parse_params(spec, ["prior=2", "method=hierarchical"]) == {
        "prior": 2.0, "method": "hierarchical",
    }
    with pytest.raises(ValueError, match="parameter prior: could not convert"):
        parse_params(spec, ["prior=abc"])
    with pytest.raises(ValueError, match="'oops' is not NAME=VALUE"):
        parse_params(spec, ["oops"])


def test_validate_code_weights_rejects_bad_output() -> None:
    good = np.full((1, HIER.n_codes), 0.5)
    validate_code_weights(CodeWeights(good), HIER, "x")
    with pytest.raises(PluginError, match=r"shape \(2, 10\)"):
        validate_code_weights(CodeWeights(np.ones((2, HIER.n_codes))), HIER, "x")
    with pytest.raises(PluginError, match="dtype float32"):
        validate_code_weights(CodeWeights(good.astype(np.float32)), HIER, "x")
    bad = good.copy()
    bad[0, HIER.code_id("042")] = 0.0
    with pytest.raises(PluginError, match="all-zero weights for category '042'"):
        validate_code_weights(CodeWeights(bad), HIER, "x")
    bad[0, 0] = -1
    with pytest.raises(PluginError, match="negative"):
        validate_code_weights(CodeWeights(bad), HIER, "x")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),
            st.floats(0, 110, allow_nan=False),
            st.lists(st.sampled_from(CODES), min_size=1, max_size=4, unique=True),
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(0, 3, allow_nan=False),
)
def test_every_strategy_gives_valid_tables(visits: list, param: float) -> None:
    cohort = make_cohort(visits)
    for out in (
        build_uniform(HIER, cohort),
        build_frequency(HIER, cohort),
        build_tempered(HIER, cohort, alpha=param),
        build_smoothed(HIER, cohort, prior=param),
        build_smoothed(HIER, cohort, prior=param, method="hierarchical"),
        build_stratified(HIER, cohort, min_visits=int(param), prior=param),
    ):
        assert_valid(out)


# --- through the compiled sampler ---------------------------------------------------------------
N_DRAWS = 200_000


def assert_sampled_matches(
    draws: np.ndarray, probs: np.ndarray, lo: int, n: int
) -> None:
    """Empirical shares of codes lo..lo+len(probs) within 5 binomial sigmas (+1/n)."""
    hist = np.bincount(draws - lo, minlength=probs.size)[: probs.size] / n
    assert ((draws >= lo) & (draws < lo + probs.size)).all()
    sigma = np.sqrt(probs * (1 - probs) / n)
    assert (np.abs(hist - probs) <= 5 * sigma + 1.0 / n).all(), (hist, probs)


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_uniform(HIER, COHORT),
        lambda: build_frequency(HIER, COHORT),
        lambda: build_tempered(HIER, COHORT, alpha=0.5),
        lambda: build_smoothed(HIER, COHORT, prior=0.5),
        lambda: build_smoothed(HIER, COHORT, prior=1.0, method="hierarchical"),
    ],
    ids=["uniform", "frequency", "tempered", "smoothed", "smoothed-hierarchical"],
)
def test_sampler_draws_the_strategy_distribution(build: object) -> None:
    core = pytest.importorskip("hiergen._core")
    weights = build()  # type: ignore[operator]
    index = core.CategoryIndex(HIER.offsets, np.ascontiguousarray(weights.weights[0]))
    for cat in range(HIER.n_categories):
        lo, hi = int(HIER.offsets[cat]), int(HIER.offsets[cat + 1])
        draws = index.sample(np.full(N_DRAWS, cat, dtype=np.int32), seed=cat + 1)
        assert_sampled_matches(np.asarray(draws), weights.weights[0, lo:hi], lo, N_DRAWS)


def test_sampler_draws_each_stratum_table() -> None:
    core = pytest.importorskip("hiergen._core")
    weights = build_stratified(HIER, COHORT, min_visits=1)
    index = core.CategoryIndex(HIER.offsets, weights.weights)
    assert index.n_strata == N_STRATA
    cat = HIER.category_id("401")
    lo, hi = int(HIER.offsets[cat]), int(HIER.offsets[cat + 1])
    for s in range(N_STRATA):
        draws = index.sample(
            np.full(N_DRAWS // 4, cat, dtype=np.int32),
            np.full(N_DRAWS // 4, s, dtype=np.int32),
            seed=100 + s,
        )
        assert_sampled_matches(np.asarray(draws), weights.weights[s, lo:hi], lo, N_DRAWS // 4)
