"""hiergen._core.CategoryIndex: draws, distributions, determinism, conversions."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest

core = pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
CategoryIndex = core.CategoryIndex

ALPHA = 1e-4  # per-category significance level; the draws use fixed seeds


def offsets_from_sizes(sizes: list[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))]).astype(np.int64)


def chi2_critical(df: int, alpha: float) -> float:
    """Upper ``alpha`` critical value of chi-square(df), Wilson-Hilferty approximation."""
    z = NormalDist().inv_cdf(1.0 - alpha)
    h = 2.0 / (9.0 * df)
    return float(df * (1.0 - h + z * math.sqrt(h)) ** 3)


def chi2_statistic(observed: npt.NDArray[np.int64], expected: npt.NDArray[np.float64]) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


def pool_small_cells(
    observed: npt.NDArray[np.int64], expected: npt.NDArray[np.float64], minimum: float = 5.0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Merge cells with expected count below ``minimum`` into one (the chi-square rule)."""
    small = expected < minimum
    if not small.any():
        return observed, expected
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] < minimum and exp.size > 1:  # still too small: merge into the smallest cell
        j = int(np.argmin(exp[:-1]))
        obs[j] += obs[-1]
        exp[j] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    return obs, exp


def random_hierarchy(
    rng: np.random.Generator, n_cat: int, max_size: int, zero_share: float = 0.2
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Random sizes and weights; some weights zero, but each category has a positive one."""
    sizes = rng.integers(1, max_size + 1, size=n_cat)
    offsets = offsets_from_sizes(sizes)
    weights = rng.gamma(0.7, size=int(offsets[-1]))
    weights[rng.random(weights.size) < zero_share] = 0.0
    for c in range(n_cat):
        b, e = offsets[c], offsets[c + 1]
        if not (weights[b:e] > 0).any():
            weights[b + rng.integers(0, e - b)] = 1.0
    return offsets, weights


@pytest.fixture(scope="module")
def hier() -> tuple[np.ndarray, np.ndarray]:
    return random_hierarchy(np.random.default_rng(7), n_cat=40, max_size=25)


def _check_category_distribution(codes: np.ndarray, cats: np.ndarray, offsets: np.ndarray,
                                 weights: np.ndarray) -> int:
    """Chi-square test per category; returns how many categories were tested."""
    tested = 0
    for c in range(offsets.size - 1):
        b, e = int(offsets[c]), int(offsets[c + 1])
        got = codes[cats == c]
        assert ((got >= b) & (got < e)).all()
        counts = np.bincount(got - b, minlength=e - b)
        w = weights[b:e]
        assert (counts[w == 0] == 0).all(), f"category {c}: a zero-weight code was drawn"
        pos = w > 0
        if pos.sum() < 2 or got.size < 1000:
            continue
        obs, expected = pool_small_cells(counts[pos], got.size * w[pos] / w[pos].sum())
        if obs.size < 2:
            continue
        stat = chi2_statistic(obs, expected)
        assert stat < chi2_critical(obs.size - 1, ALPHA), f"category {c}: chi2 {stat:.1f}"
        tested += 1
    return tested


def test_sample_matches_weights_per_category(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, weights)
    cats = np.random.default_rng(1).integers(0, offsets.size - 1, size=1_000_000).astype(np.int32)
    codes = index.sample(cats, seed=12345)
    assert codes.dtype == np.int32 and codes.shape == cats.shape
    assert _check_category_distribution(codes, cats, offsets, weights) >= 30


def test_sample_per_stratum_uses_its_table(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, w0 = hier
    rng = np.random.default_rng(3)
    w1 = rng.permutation(w0)
    w1 += 0.01  # no all-zero category
    index = CategoryIndex(offsets, np.stack([w0, w1]))
    assert index.n_strata == 2
    cats = rng.integers(0, offsets.size - 1, size=800_000)
    strata = rng.integers(0, 2, size=cats.size).astype(np.int8)
    codes = index.sample(cats, strata, seed=99)
    for s, w in enumerate((w0, w1)):
        sel = strata == s
        assert _check_category_distribution(codes[sel], cats[sel], offsets, w) >= 20
    # A scalar stratum applies to every element.
    only1 = index.sample(cats[:1000], 1, seed=5)
    assert np.array_equal(only1, index.sample(cats[:1000], np.ones(1000, np.int64), seed=5))


def test_probabilities_of_a_small_category_are_exact() -> None:
    # 3 codes with weights 1:2:7 drawn 2M times: each share within 5 standard errors.
    index = CategoryIndex([0, 3], [1.0, 2.0, 7.0])
    n = 2_000_000
    counts = np.bincount(index.sample(np.zeros(n, np.int32), seed=2), minlength=3)
    p = np.array([0.1, 0.2, 0.7])
    se = np.sqrt(p * (1 - p) / n)
    assert (np.abs(counts / n - p) < 5 * se).all()


def test_same_seed_same_output_and_seeds_differ(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, weights)
    cats = np.random.default_rng(0).integers(0, offsets.size - 1, size=50_000)
    a = index.sample(cats, seed=1)
    assert np.array_equal(a, index.sample(cats, seed=1))
    b = index.sample(cats, seed=2)
    assert (a != b).mean() > 0.3


def test_output_independent_of_threads_and_prefix(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, weights)
    cats = np.random.default_rng(0).integers(0, offsets.size - 1, size=300_001)
    runs = [index.sample(cats, seed=77, threads=t) for t in (1, 2, 8)]
    runs.append(index.sample(cats, seed=77))
    for r in runs[1:]:
        assert np.array_equal(runs[0], r)
    # Element i depends on (seed, i) only: a prefix draws the same codes.
    assert np.array_equal(index.sample(cats[:1234], seed=77), runs[0][:1234])


def test_golden_values_are_stable_across_platforms() -> None:
    # Bit-exact output for a fixed seed: integer-only mapping of random bits, no std
    # distributions. A change here changes every seeded result users have.
    index = CategoryIndex([0, 4, 5, 9], [1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 1.0, 1.0, 5.0])
    got = index.sample([0, 1, 2, 0, 2, 2, 0, 1], seed=2024).tolist()
    assert got == GOLDEN_SAMPLE
    got_v = index.sample_visits([0, 0, 2, 2, 2, 1], [0, 3, 6], seed=2024).tolist()
    assert got_v == GOLDEN_VISITS


# Session 4 changed sample(): two elements per 64-bit number (one 32-bit half each, column
# and accept test from the same half). sample_visits is unchanged.
GOLDEN_SAMPLE = [1, 4, 8, 2, 8, 8, 0, 4]
GOLDEN_VISITS = [3, 2, 8, 6, 8, 4]


def test_out_buffer_is_filled_and_returned(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, weights)
    cats = np.arange(offsets.size - 1, dtype=np.int32)
    out = np.full(cats.size, -1, dtype=np.int32)
    res = index.sample(cats, seed=3, out=out)
    assert res is out
    assert np.array_equal(out, index.sample(cats, seed=3))


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
              ">i4", "<i8"]
)
def test_integer_dtypes_convert_safely(dtype: object) -> None:
    offsets = offsets_from_sizes([3, 1, 4])
    index = CategoryIndex(offsets.astype(np.int32), np.arange(1.0, 9.0))
    cats = np.array([0, 1, 2, 2, 1, 0, 2], dtype=np.int64)
    ref = index.sample(cats, seed=11)
    assert np.array_equal(index.sample(cats.astype(dtype), seed=11), ref)
    assert np.array_equal(index.sample(cats.tolist(), seed=11), ref)


def test_non_contiguous_and_read_only_inputs() -> None:
    index = CategoryIndex([0, 2, 5], [1.0, 1.0, 1.0, 2.0, 3.0])
    base = np.array([[0, 9], [1, 9], [1, 9], [0, 9]], dtype=np.int64)
    strided = base[:, 0]
    assert not strided.flags.c_contiguous
    ro = np.ascontiguousarray(strided)
    ro.setflags(write=False)
    ref = index.sample(np.ascontiguousarray(strided), seed=4)
    assert np.array_equal(index.sample(strided, seed=4), ref)
    assert np.array_equal(index.sample(ro, seed=4), ref)
    w = np.array([1.0, 1.0, 1.0, 2.0, 3.0])
    w.setflags(write=False)
    ro_index = CategoryIndex(np.array([0, 2, 5])[::1], w)
    assert np.array_equal(ro_index.sample(ro, seed=4), ref)


def test_zero_length_input_returns_empty() -> None:
    index = CategoryIndex([0, 2], [1.0, 1.0])
    for empty in ([], np.array([], dtype=np.int64), np.array([], dtype=np.uint8)):
        res = index.sample(empty, seed=0)
        assert res.dtype == np.int32 and res.shape == (0,)
        vis = index.sample_visits(empty, [0], seed=0)
        assert vis.shape == (0,)


def test_zero_weight_uniform_fallback() -> None:
    index = CategoryIndex([0, 2, 6], [1.0, 3.0, 0.0, 0.0, 0.0, 0.0], zero_weight="uniform")
    assert index.zero_weight == "uniform"
    n = 400_000
    codes = index.sample(np.ones(n, np.int32), seed=8)
    counts = np.bincount(codes - 2, minlength=4)
    assert chi2_statistic(counts, np.full(4, n / 4)) < chi2_critical(3, ALPHA)


def test_properties_and_with_weights() -> None:
    offsets = offsets_from_sizes([2, 3])
    w = np.array([1.0, 0.0, 2.0, 2.0, 1.0])
    index = CategoryIndex(offsets, w)
    assert (index.n_categories, index.n_codes, index.n_strata) == (2, 5, 1)
    assert np.array_equal(index.offsets, offsets)
    assert index.weights.shape == (1, 5) and np.array_equal(index.weights[0], w)
    with pytest.raises(ValueError):
        index.weights[0, 0] = 5.0  # read-only copy
    assert "n_categories=2" in repr(index)
    w2 = np.stack([w, w[::-1].copy() + 1.0, np.ones(5)])
    index2 = index.with_weights(w2)
    assert index2.n_strata == 3 and index.n_strata == 1
    assert np.array_equal(index2.weights, w2)
    # The new tables are used: stratum 1 puts weight on code 1, which is 0 in stratum 0.
    codes = index2.sample(np.zeros(20_000, np.int32), 1, seed=1)
    assert (codes == 1).any()
    assert not (index.sample(np.zeros(20_000, np.int32), seed=1) == 1).any()


def test_with_weights_rebuild_is_cheap_enough_to_call_often() -> None:
    # Functional check only (timings live in benchmarks/bench_sampler.py).
    rng = np.random.default_rng(0)
    offsets = offsets_from_sizes(rng.integers(1, 20, size=1000))
    index = CategoryIndex(offsets, np.ones(int(offsets[-1])))
    for seed in range(3):
        w = np.random.default_rng(seed).random(int(offsets[-1])) + 0.1
        assert np.array_equal(index.with_weights(w).weights[0], w)


# --- sample_visits -----------------------------------------------------------------------


def test_visits_repeated_category_gives_distinct_codes(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, weights)
    npos = np.add.reduceat(weights > 0, offsets[:-1])
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 12, size=5000)
    visit_offsets = offsets_from_sizes(lengths)
    # Few categories per visit so that repeats are common.
    cats = rng.integers(0, 6, size=int(visit_offsets[-1]))
    codes = index.sample_visits(cats, visit_offsets, seed=3)
    for v in range(lengths.size):
        b, e = visit_offsets[v], visit_offsets[v + 1]
        vc, vcode = cats[b:e], codes[b:e]
        assert ((vcode >= offsets[vc]) & (vcode < offsets[vc + 1])).all()
        assert (weights[vcode] > 0).all()
        for c in np.unique(vc):
            k = int((vc == c).sum())
            drawn = vcode[vc == c]
            distinct = np.unique(drawn).size
            assert distinct == min(k, int(npos[c])), (v, c, k, drawn)


def test_visits_second_draw_is_conditioned_without_replacement() -> None:
    # Visit [c, c] with weights w: P(a then b) = w_a / W * w_b / (W - w_a).
    w = np.array([1.0, 2.0, 3.0, 4.0])
    index = CategoryIndex([0, 4], w)
    n_vis = 200_000
    codes = index.sample_visits(np.zeros(2 * n_vis, np.int32),
                                np.arange(0, 2 * n_vis + 1, 2), seed=21)
    pairs = codes.reshape(-1, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    W = w.sum()
    expected = np.array(
        [w[a] / W * w[b] / (W - w[a]) for a in range(4) for b in range(4) if a != b]
    )
    counts = np.array([((pairs[:, 0] == a) & (pairs[:, 1] == b)).sum()
                       for a in range(4) for b in range(4) if a != b])
    stat = chi2_statistic(counts, expected * n_vis)
    assert stat < chi2_critical(11, ALPHA)


def test_visits_exhausted_repeat_and_error() -> None:
    index = CategoryIndex([0, 3], [1.0, 0.0, 1.0])
    codes = index.sample_visits([0, 0, 0, 0], [0, 4], seed=1)
    assert set(codes[:2].tolist()) == {0, 2}
    assert set(codes.tolist()) <= {0, 2}
    with pytest.raises(ValueError, match="visit 0 repeats category 0"):
        index.sample_visits([0, 0, 0], [0, 3], seed=1, exhausted="error")
    with pytest.raises(ValueError, match="exhausted"):
        index.sample_visits([0], [0, 1], seed=1, exhausted="never")


def test_visits_single_draws_match_weights(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, weights)
    rng = np.random.default_rng(9)
    cats = rng.integers(0, offsets.size - 1, size=600_000)
    # One element per visit: the marginal distribution must be the weights.
    codes = index.sample_visits(cats, np.arange(cats.size + 1), seed=6)
    assert _check_category_distribution(codes, cats, offsets, weights) >= 25


def test_visits_independent_of_threads_and_prefix(hier: tuple[np.ndarray, np.ndarray]) -> None:
    offsets, weights = hier
    index = CategoryIndex(offsets, np.stack([weights, weights + 0.5]))
    rng = np.random.default_rng(4)
    lengths = rng.integers(0, 10, size=30_000)
    vo = offsets_from_sizes(lengths)
    cats = rng.integers(0, 5, size=int(vo[-1])).astype(np.int32)
    strata = rng.integers(0, 2, size=lengths.size)
    runs = [index.sample_visits(cats, vo, strata, seed=5, threads=t) for t in (1, 2, 8)]
    for r in runs[1:]:
        assert np.array_equal(runs[0], r)
    k = 1000
    prefix = index.sample_visits(cats[: vo[k]], vo[: k + 1], strata[:k], seed=5)
    assert np.array_equal(prefix, runs[0][: vo[k]])
    other = index.sample_visits(cats, vo, strata, seed=6)
    assert not np.array_equal(other, runs[0])
