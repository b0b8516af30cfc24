"""Unit tests of the evaluation metrics on hand-made cohorts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_evaluate_support import make_cohort, random_cohort

from hiergen.evaluate import evaluate, independent_codes, resample_split
from hiergen.evaluate._stats import auc, r2, total_variation
from hiergen.evaluate._visits import (
    PAIR_BASE,
    category_of,
    cross_pairs,
    set_hashes,
    view,
    within_pairs,
)
from hiergen.evaluate.diversity import diversity
from hiergen.evaluate.fidelity import consecutive_r2, pair_r2, strata_r2, unigram_r2
from hiergen.evaluate.lengths import length_tv
from hiergen.evaluate.plausibility import impossible_visits, plausibility
from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import MetricSpec

sets = st.lists(st.lists(st.integers(0, 30), unique=True, max_size=7), max_size=12)


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    items = np.asarray([x for s in lists for x in sorted(s)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in lists])]).astype(np.int64)
    return items, offsets


@settings(max_examples=60, deadline=None)
@given(sets)
def test_within_pairs_match_brute_force(lists: list[list[int]]) -> None:
    got = sorted(within_pairs(*_csr(lists)).tolist())
    want = sorted(
        a * PAIR_BASE + b for s in lists for a, b in itertools.combinations(sorted(s), 2)
    )
    assert got == want


@settings(max_examples=60, deadline=None)
@given(sets)
def test_cross_pairs_match_brute_force(lists: list[list[int]]) -> None:
    items, offsets = _csr(lists)
    left = np.arange(max(len(lists) - 1, 0), dtype=np.int64)
    got = sorted(cross_pairs(items, offsets, left, left + 1).tolist())
    want = sorted(
        a * PAIR_BASE + b for s, t in itertools.pairwise(lists) for a in s for b in t
    )
    assert got == want


def test_set_hashes_ignore_order_and_tell_sets_apart() -> None:
    h = set_hashes(*_csr([[3, 1, 2], [2, 3, 1], [1, 2], [], [4]]))
    assert h[0] == h[1]
    assert len({int(x) for x in h[[0, 2, 3, 4]]}) == 4
    assert h[3] == 0


def test_category_of_rule() -> None:
    assert category_of("401.9") == "401"
    assert category_of("V30.00") == "V30"
    assert category_of("E849.7") == "E849"


def test_r2_and_tv_and_auc_known_values() -> None:
    real = np.array([0.1, 0.2, 0.3, 0.4])
    assert r2(real, real) == 1.0
    assert r2(real, np.full(4, real.mean())) == pytest.approx(0.0)
    assert math.isnan(r2(np.array([0.5]), np.array([0.5])))
    assert total_variation([1, 1, 2, 2], [1, 1, 2, 2]) == 0.0
    assert total_variation([1, 1], [3, 3]) == 1.0
    assert total_variation([1, 2], [1, 3]) == pytest.approx(0.5)
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    assert auc(np.array([2.0, 0.0]), np.array([1.0, 1.0])) == 0.5


def test_identical_cohorts_score_perfectly() -> None:
    c = random_cohort(400, seed=1)
    other = make_cohort([[list(reversed(v))] for v in _visits_of(c)], c.sex, c.age)
    assert unigram_r2(c, other) == {"code_unigram_r2": 1.0, "category_unigram_r2": 1.0}
    assert pair_r2(c, other) == {"code_pair_r2": 1.0, "category_pair_r2": 1.0}
    assert length_tv(c, other)["codes_per_visit_tv"] == 0.0


def _visits_of(c) -> list[list[str]]:  # type: ignore[no-untyped-def]
    vo = c.visit_offsets
    return [[c.vocab[i] for i in c.codes[vo[v] : vo[v + 1]]] for v in range(c.n_visits)]


def test_pair_r2_separates_correlated_from_independent() -> None:
    real = random_cohort(3000, seed=2)
    same_process = random_cohort(3000, seed=3)
    floor = independent_codes(real, real, seed=4)
    good = pair_r2(real, same_process)["code_pair_r2"]
    bad = pair_r2(real, floor)["code_pair_r2"]
    assert good > 0.9
    assert bad < good - 0.3
    # unigram R2 hardly tells them apart: the reason pair R2 and the floor exist
    assert unigram_r2(real, floor)["code_unigram_r2"] > 0.9


def test_pair_prevalence_hand_computed() -> None:
    real = make_cohort([[["401.9", "250.00"]], [["401.9", "250.00", "272.4"]]])
    syn = make_cohort([[["401.9", "272.4"]], [["401.9", "250.00"]]])
    # pairs (real, syn) rates: 401.9-250.00 (1, .5); 401.9-272.4 (.5, .5); 250.00-272.4 (.5, 0)
    real_rates = np.array([1.0, 0.5, 0.5])
    syn_rates = np.array([0.5, 0.5, 0.0])
    assert pair_r2(real, syn)["code_pair_r2"] == pytest.approx(r2(real_rates, syn_rates))
    # categories 401, 250, 272: same structure
    assert pair_r2(real, syn)["category_pair_r2"] == pytest.approx(r2(real_rates, syn_rates))


def test_consecutive_pairs_use_visit_order() -> None:
    patients = [[["401.9"], ["250.00"]]] * 10 + [
        [["401.9"], ["272.4"]], [["V30.00"], ["401.9"]]
    ] * 5
    reversed_order = [list(reversed(p)) for p in patients]
    real = make_cohort(patients)
    assert consecutive_r2(real, make_cohort(patients))["code_consecutive_r2"] == 1.0
    assert consecutive_r2(real, make_cohort(reversed_order))["code_consecutive_r2"] < 0.0
    one_visit = make_cohort([[["401.9"]]] * 20)
    assert consecutive_r2(one_visit, one_visit) == {}


def test_strata_r2_sees_what_pooled_prevalence_misses() -> None:
    # women hold 650.00, men 401.9; the synthetic cohort swaps them: pooled rates agree
    n = 200
    extra = ["250.00", "272.4", "V15.82", "250.00"]
    real = make_cohort([[["650.00" if i % 2 else "401.9", extra[i % 4]]] for i in range(n)],
                       [i % 2 for i in range(n)], [30.0] * n)
    swapped = make_cohort([[["401.9" if i % 2 else "650.00", extra[i % 4]]] for i in range(n)],
                          [i % 2 for i in range(n)], [30.0] * n)
    assert unigram_r2(real, swapped)["code_unigram_r2"] == 1.0
    assert strata_r2(real, swapped)["code_strata_r2"] < 0.5
    assert strata_r2(real, real)["code_strata_r2"] == 1.0


def test_plausibility_flags_impossible_codes() -> None:
    c = make_cohort(
        [[["650.00"]], [["650.00"]], [["600.00"]], [["V30.00"]], [["V30.00"]], [["401.9"]]],
        sex=[0, 1, 1, 0, 0, 0], age=[30, 30, 60, 0.01, 40, 40],
    )
    sex_bad, age_bad = impossible_visits(c)
    assert sex_bad.tolist() == [True, False, True, False, False, False]
    assert age_bad.tolist() == [False, False, False, False, True, False]
    out = plausibility(c, c)
    assert out["sex_impossible_rate"] == pytest.approx(2 / 6)
    assert out["age_impossible_rate_real"] == pytest.approx(1 / 6)


def test_diversity_counts_distinct_codes() -> None:
    real = make_cohort([[["401.9", "250.00"]], [["272.4"]], [["V30.00"]]])
    collapsed = make_cohort([[["401.9"]]] * 3)
    out = diversity(real, collapsed)
    assert out["distinct_codes_real"] == 4.0
    assert out["distinct_codes"] == 1.0
    assert out["code_diversity_ratio"] == 0.25


def test_independent_codes_keep_shape_and_draw_at_marginal_rates() -> None:
    ref = random_cohort(4000, seed=5, correlated=False)
    floor = independent_codes(ref, ref, seed=6)
    assert np.array_equal(floor.visit_lengths, ref.visit_lengths)
    # no code twice in a visit
    assert np.array_equal(np.diff(view(floor).codes[1]), ref.visit_lengths)
    # one-code visits draw each code with probability = its share of the reference's rows
    singles = make_cohort([[["401.9"]]] * 20000)
    drawn = independent_codes(ref, singles, seed=7)
    share = np.bincount(ref.codes, minlength=len(ref.vocab)) / ref.n_rows
    got = np.bincount(drawn.codes, minlength=len(ref.vocab)) / drawn.n_visits
    se = np.sqrt(share * (1 - share) / drawn.n_visits)
    assert (np.abs(got - share) < 5 * se + 1e-4).all()


def test_resample_split_is_a_partition() -> None:
    c = random_cohort(500, seed=7)
    sample, rest = resample_split(c, 100, seed=0)
    assert sample.n_visits == 100
    assert sample.n_visits + rest.n_visits == c.n_visits
    ids = np.concatenate([sample.patient_ids, rest.patient_ids])
    assert np.array_equal(np.sort(ids), np.arange(c.n_patients))


def test_evaluate_rows_and_gap_closed() -> None:
    train = random_cohort(3000, seed=8)
    real = random_cohort(1000, seed=9)
    good = random_cohort(1000, seed=10)
    report = evaluate(real, good, train=train, privacy_sample=200)
    row = report["code_pair_r2"]
    assert row.ceiling > 0.9
    assert row.floor < row.ceiling - 0.2
    assert row.gap_closed == pytest.approx((row.value - row.floor) / (row.ceiling - row.floor))
    assert 0.8 < row.gap_closed < 1.2
    floor_like = independent_codes(train, real, seed=11)
    worse = evaluate(real, floor_like, train=train, metrics=["pairs"])
    assert abs(worse["code_pair_r2"].gap_closed) < 0.2
    assert set(report.values) == {"synthetic", "ceiling", "floor"}
    assert report["exact_copy_rate"].real == report.values["synthetic"]["exact_copy_rate_heldout"]


def test_evaluate_without_train_uses_real_halves() -> None:
    real = random_cohort(600, seed=12)
    report = evaluate(real, random_cohort(600, seed=13))
    assert "half" in report.info["ceiling"]
    assert "exact_copy_rate" not in report.values["synthetic"]
    assert report["code_unigram_r2"].ceiling > 0.8


def test_evaluate_rejects_unknown_metric_and_empty_cohort() -> None:
    c = random_cohort(50, seed=14)
    with pytest.raises(LookupError, match="unknown metric 'nope'.*pairs"):
        evaluate(c, c, metrics=["nope"])
    empty = make_cohort([])
    with pytest.raises(ValueError, match="synthetic: 0"):
        evaluate(c, empty)


class _ShareOfShortVisits:
    """A test-only metric plugin."""

    @staticmethod
    def compute(real, synthetic, **_):  # type: ignore[no-untyped-def]
        return {"short_visit_share": float((synthetic.visit_lengths <= 1).mean())}

    @hookimpl
    def hiergen_metrics(self) -> list[MetricSpec]:
        return [MetricSpec("short", self.compute, "share of one-code visits")]


def test_builtin_metrics_come_through_the_hook() -> None:
    from hiergen.plugins.registry import registry

    names = set(registry("metrics"))
    assert {"unigram", "pairs", "privacy", "plausibility"} <= names


def test_metric_plugin_is_evaluated() -> None:
    from hiergen.plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    plugin = _ShareOfShortVisits()
    pm.register(plugin, name="test-short-metric")
    try:
        c = make_cohort([[["401.9"]], [["401.9", "250.00"]]])
        report = evaluate(c, c, metrics=["short", "unigram"], baselines=False)
        assert report["short_visit_share"].value == 0.5
        assert report["short_visit_share"].metric == "short"
    finally:
        pm.unregister(name="test-short-metric")
