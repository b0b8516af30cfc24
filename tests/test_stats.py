"""The sparsity table: a hand-checked example, brute force agreement, the real-data figures."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy
from hiergen.loaders import load
from hiergen.stats import format_sparsity, level_sparsity, sparsity

FIX = Path(__file__).parent / "fixtures"


def _cohort(visits: list[list[str]]) -> Cohort:
    vocab = tuple(sorted({c for v in visits for c in v}))
    ids = {c: i for i, c in enumerate(vocab)}
    vo = np.zeros(len(visits) + 1, dtype=np.int64)
    vo[1:] = np.cumsum([len(v) for v in visits])
    n = len(visits)
    return Cohort(
        patient_ids=np.arange(n), patient_offsets=np.arange(n + 1, dtype=np.int64),
        visit_offsets=vo, codes=np.array([ids[c] for v in visits for c in v], dtype=np.int32),
        vocab=vocab, sex=np.zeros(n, np.int8), age=np.full(n, 40, np.float32),
    )


def test_hand_example() -> None:
    c = _cohort([["401.9", "401.1", "250.00"], ["401.9", "486"], ["486"]])
    s = sparsity(c)
    # codes: 4 items, 6 possible pairs; observed {401.9-401.1, 401.9-250.00, 401.1-250.00,
    # 401.9-486} = 4
    assert (s.code.items, s.code.possible_pairs, s.code.observed_pairs) == (4, 6, 4)
    assert s.code.mean_partners == 2.0
    # categories 401, 250, 486: visit 1 {401, 250}, visit 2 {401, 486}: 2 of 3 pairs
    assert (s.category.items, s.category.possible_pairs, s.category.observed_pairs) == (3, 3, 2)
    text = format_sparsity(s)
    assert "no self-pairs" in text and "66.67%" in text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=12), min_size=1, max_size=40))
def test_pairs_agree_with_brute_force(visits: list[list[int]]) -> None:
    items = np.array([i for v in visits for i in v], dtype=np.int64)
    vo = np.zeros(len(visits) + 1, dtype=np.int64)
    vo[1:] = np.cumsum([len(v) for v in visits])
    got = level_sparsity(items, vo, "x")
    pairs = {p for v in visits for p in itertools.combinations(sorted(set(v)), 2)}
    distinct = {i for v in visits for i in v}
    assert got.items == len(distinct)
    assert got.observed_pairs == len(pairs)
    assert got.possible_pairs == len(distinct) * (len(distinct) - 1) // 2
    if distinct:
        assert np.isclose(got.mean_partners, 2 * len(pairs) / len(distinct))


def test_flat_hierarchy_gives_code_level_twice() -> None:
    c = _cohort([["401.9", "401.1"], ["486", "401.9"]])
    s = sparsity(c, Hierarchy.flat(c.vocab))
    assert s.category.observed_pairs == s.code.observed_pairs == 2


def test_stats_command_on_fixture() -> None:
    from hiergen.cli.commands.stats import command

    res = CliRunner().invoke(command, [str(FIX / "mimic3"), "--format", "mimic3", "--json"])
    assert res.exit_code == 0, res.output
    assert '"observed_pairs"' in res.output and '"dropped"' in res.output
    res = CliRunner().invoke(
        command, [str(FIX / "table" / "long.csv"), "--format", "table", "-o", "delimiter=,"]
    )
    assert res.exit_code == 0, res.output
    assert "distinct items" in res.output
    res = CliRunner().invoke(command, [str(FIX / "mimic3"), "--format", "mimic3", "--strict"])
    assert res.exit_code != 0


def test_nhds_figures(nhds_path: Path) -> None:
    c, _ = load(nhds_path, format="nhds")
    s = sparsity(c)
    assert (s.code.items, s.category.items) == (8083, 1116)
    assert (s.code.observed_pairs, s.code.possible_pairs) == (767_787, 32_663_403)
    assert (s.category.observed_pairs, s.category.possible_pairs) == (134_666, 622_170)
    assert round(100 * s.code.coverage, 2) == 2.35 and round(100 * s.category.coverage, 1) == 21.6
    assert round(s.code.mean_partners, 1) == 190.0 and round(s.category.mean_partners, 1) == 241.3


def test_mimic3_demo_figures(mimic3_demo_dir: Path) -> None:
    c, _ = load(mimic3_demo_dir, format="mimic3")
    s = sparsity(c)
    assert (s.code.observed_pairs, s.code.possible_pairs) == (10_256, 168_490)
    assert (s.category.observed_pairs, s.category.possible_pairs) == (5_791, 37_675)
