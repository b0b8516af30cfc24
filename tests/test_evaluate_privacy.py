"""Privacy metrics: exact copies, distance to closest record, membership inference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_evaluate_support import make_cohort, random_cohort

from hiergen.evaluate.privacy import (
    copy_rate,
    nearest_jaccard_distance,
    patient_copy_rate,
    privacy,
)

code_sets = st.lists(
    st.lists(st.sampled_from(["401.9", "250.00", "272.4", "V30.00", "E849.7", "428.0"]),
             unique=True, max_size=4),
    min_size=1, max_size=15,
)


def _jaccard_brute(q: set[str], refs: list[set[str]]) -> float:
    best = 1.0
    for r in refs:
        union = q | r
        best = min(best, 0.0 if not union else 1.0 - len(q & r) / len(union))
    return best


@settings(max_examples=60, deadline=None)
@given(code_sets, code_sets)
def test_nearest_jaccard_matches_brute_force(
    queries: list[list[str]], refs: list[list[str]]
) -> None:
    q = make_cohort([[v] for v in queries])
    r = make_cohort([[v] for v in refs])
    got = nearest_jaccard_distance(q, r)
    want = [_jaccard_brute(set(v), [set(x) for x in refs]) for v in queries]
    np.testing.assert_allclose(got, want)


def test_nearest_jaccard_chunks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    q = random_cohort(300, seed=1, correlated=False)
    r = random_cohort(500, seed=2, correlated=False)
    whole = nearest_jaccard_distance(q, r)
    import hiergen.evaluate.privacy as privacy_mod

    monkeypatch.setattr(privacy_mod, "CHUNK_CELLS", 1000)  # two queries per chunk
    np.testing.assert_allclose(nearest_jaccard_distance(q, r), whole)
    np.testing.assert_allclose(nearest_jaccard_distance(q, r, [5, 7]), whole[[5, 7]])


def test_copy_rates() -> None:
    train = make_cohort([[["401.9", "250.00"], ["272.4"]], [["V30.00"]]])
    syn = make_cohort([[["250.00", "401.9"]], [["428.0"]], [["401.9", "250.00"], ["272.4"]]])
    assert copy_rate(syn, train) == pytest.approx(3 / 4)  # visits: 2 copies of one, and 272.4
    assert patient_copy_rate(syn, train) == pytest.approx(1 / 3)


def test_memorising_generator_is_caught() -> None:
    train = random_cohort(1500, seed=3, correlated=False)
    heldout = random_cohort(1500, seed=4, correlated=False)
    copies = train.select_visits(np.arange(1000))  # a generator that replays training visits
    fresh = random_cohort(1000, seed=5, correlated=False)
    leak = privacy(heldout, copies, train=train, privacy_sample=400)
    safe = privacy(heldout, fresh, train=train, privacy_sample=400)
    assert leak["exact_copy_rate"] == 1.0
    assert safe["exact_copy_rate"] == pytest.approx(safe["exact_copy_rate_heldout"], abs=0.05)
    assert leak["dcr_mean"] == 0.0
    assert safe["dcr_mean"] == pytest.approx(safe["dcr_mean_heldout"], abs=0.05)
    # members replayed by the generator sit at distance 0 of a synthetic record
    assert leak["mia_auc"] > 0.75
    assert abs(safe["mia_auc"] - 0.5) < 0.08


def test_privacy_needs_train() -> None:
    c = random_cohort(20, seed=6)
    assert privacy(c, c) == {}
