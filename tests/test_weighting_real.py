"""Weighting strategies on the MIMIC-III demo with a hierarchy widened to ICD-9-CM v32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hiergen.cohort import Cohort
from hiergen.demographics import N_STRATA
from hiergen.hierarchy import Hierarchy
from hiergen.plugins import get_loader
from hiergen.weighting import block_sums, build_weights, code_counts

STRATEGIES = [
    ("uniform", {}),
    ("frequency", {}),
    ("tempered", {"alpha": 0.5}),
    ("smoothed", {"prior": 0.5}),
    ("smoothed", {"prior": 0.5, "method": "hierarchical"}),
    ("stratified", {"min_visits": 5}),
]


@pytest.fixture(scope="module")
def mimic(mimic3_demo_dir: Path) -> tuple[Cohort, Hierarchy]:
    cohort, _ = get_loader("mimic3").load(mimic3_demo_dir)
    return cohort, Hierarchy.from_codes(cohort.vocab, widen=True)


@pytest.mark.parametrize(("name", "params"), STRATEGIES)
def test_valid_tables_on_a_widened_hierarchy(
    mimic: tuple[Cohort, Hierarchy], name: str, params: dict
) -> None:
    cohort, hier = mimic
    out = build_weights(name, hier, cohort, params)
    assert out.weights.shape[1] == hier.n_codes
    assert out.weights.shape[0] == (N_STRATA if name == "stratified" else 1)
    np.testing.assert_allclose(block_sums(out.weights, hier.offsets), 1.0, rtol=1e-12)


def test_only_smoothing_reaches_unseen_valid_codes(mimic: tuple[Cohort, Hierarchy]) -> None:
    cohort, hier = mimic
    seen = code_counts(hier, cohort) > 0
    assert (~seen).sum() > 1000  # widening added many valid codes
    freq = build_weights("frequency", hier, cohort).weights[0]
    assert (freq[~seen] == 0).all()
    for method in ("additive", "hierarchical"):
        smooth = build_weights("smoothed", hier, cohort, {"method": method}).weights[0]
        assert (smooth > 0).all(), method


def test_sampled_share_of_unseen_codes(mimic: tuple[Cohort, Hierarchy]) -> None:
    """Drawing the real visits' categories: unseen codes come out at the rate the table says."""
    core = pytest.importorskip("hiergen._core")
    cohort, hier = mimic
    seen = code_counts(hier, cohort) > 0
    cats = np.tile(cohort.category_ids_in(hier).astype(np.int32), 50)
    for name, params in [("frequency", {}), ("smoothed", {"prior": 0.5})]:
        weights = build_weights(name, hier, cohort, params).weights[0]
        index = core.CategoryIndex(hier.offsets, np.ascontiguousarray(weights))
        draws = np.asarray(index.sample(cats, seed=7))
        assert (hier.code_category[draws] == cats).all()
        unseen_mass = block_sums(np.where(seen, 0.0, weights), hier.offsets)[cats]
        expected = unseen_mass.sum()
        observed = (~seen[draws]).sum()
        sd = np.sqrt((unseen_mass * (1 - unseen_mass)).sum())
        assert abs(observed - expected) <= 5 * sd + 1, (name, observed, expected)
        if name == "frequency":
            assert observed == 0
        else:
            assert observed > 100
