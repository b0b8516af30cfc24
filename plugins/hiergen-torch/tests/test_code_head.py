"""The neural code head (Stage 2): valid draws, the learned code link, seeds, save/load, errors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hiergen import Cohort, Hierarchy
from hiergen.errors import ModelError
from hiergen_torch.code_head import CodeHeadSampler, fit_code_head

TINY_HEAD: dict[str, Any] = {"dim": 8, "hidden": 16, "batch": 32, "lr": 3e-2}

# As in tests/test_context.py: 250.40 always comes with 585.3, 250.00 with 585.9 (and 401.9).
LINK_VOCAB = ("250.00", "250.40", "585.3", "585.9", "401.9")
LINK_VISITS = [("250.40", "585.3")] * 100 + [("250.00", "585.9")] * 100 + [
    ("250.00", "401.9")] * 50


def visits_cohort(visits: Sequence[Sequence[str]], vocab: tuple[str, ...]) -> Cohort:
    """One patient per visit, all men of 50."""
    lengths = [len(v) for v in visits]
    n = len(visits)
    return Cohort(
        patient_ids=np.arange(n),
        patient_offsets=np.arange(n + 1, dtype=np.int64),
        visit_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        codes=np.asarray([vocab.index(c) for v in visits for c in v], dtype=np.int32),
        vocab=vocab,
        sex=np.zeros(n, dtype=np.int8),
        age=np.full(n, 50.0, dtype=np.float32),
    )


@pytest.fixture(scope="module")
def link() -> tuple[Hierarchy, Cohort, np.ndarray]:
    """The link fixture and a rank drawing 250 first, then 585, then 401."""
    hierarchy = Hierarchy.from_codes(LINK_VOCAB)
    rank = np.zeros(hierarchy.n_categories, dtype=np.int32)
    for r, name in enumerate(("250", "585", "401")):
        rank[hierarchy.category_id(name)] = r
    return hierarchy, visits_cohort(LINK_VISITS, LINK_VOCAB), rank


@pytest.fixture(scope="module")
def heads(link: tuple[Hierarchy, Cohort, np.ndarray]) -> dict[bool, CodeHeadSampler]:
    """Heads with and without the codes drawn before, trained on the link fixture."""
    hierarchy, cohort, rank = link
    return {ar: fit_code_head(hierarchy, cohort, rank, autoregressive=ar, epochs=15,
                              **TINY_HEAD) for ar in (True, False)}


@pytest.fixture(scope="module")
def link_draws(link: tuple[Hierarchy, Cohort, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Stage-1 oracle of the link fixture, 20 times: 5,000 visits, 4,000 with 250 and 585."""
    hierarchy, cohort, _ = link
    cats = np.tile(cohort.category_ids_in(hierarchy), 20).astype(np.int32)
    return cats, np.arange(0, cats.size + 1, 2, dtype=np.int64)


def shares_585_3(link: tuple[Hierarchy, Cohort, np.ndarray], head: CodeHeadSampler,
                 draws: tuple[np.ndarray, np.ndarray]) -> tuple[float, float, int]:
    """Draw the link oracle (seed 3); among drawn visits holding a 585 code: the share with
    585.3 given 250.40, the share with 585.3 overall, and the number of visits with 250.40."""
    hierarchy = link[0]
    pairs = head.sample_visits(*draws, seed=3).reshape(-1, 2)
    with_585 = (hierarchy.code_category[pairs] == hierarchy.category_id("585")).any(axis=1)
    with_40 = (pairs == hierarchy.code_id("250.40")).any(axis=1) & with_585
    with_3 = (pairs == hierarchy.code_id("585.3")).any(axis=1)
    n_40 = int(with_40.sum())
    return float(with_3[with_40].mean()), float(with_3[with_585].mean()), n_40


def test_autoregressive_head_reproduces_the_link(
        link: tuple[Hierarchy, Cohort, np.ndarray], heads: dict[bool, CodeHeadSampler],
        link_draws: tuple[np.ndarray, np.ndarray]) -> None:
    given_40, _, n_40 = shares_585_3(link, heads[True], link_draws)
    assert n_40 > 1000
    assert given_40 > 0.9


def test_category_only_head_cannot_see_the_link(
        link: tuple[Hierarchy, Cohort, np.ndarray], heads: dict[bool, CodeHeadSampler],
        link_draws: tuple[np.ndarray, np.ndarray]) -> None:
    given_40, base, n_40 = shares_585_3(link, heads[False], link_draws)
    # Both 585 codes come with category 250 half the time: a head that sees categories only
    # draws 585's code independently of 250's, so the share given 250.40 is the base rate up
    # to sampling noise (4 standard errors of a share over n_40 visits).
    assert abs(base - 0.5) < 0.15
    assert abs(given_40 - base) < 4 * math.sqrt(base * (1 - base) / n_40)


def test_draws_lie_in_their_category_and_are_distinct_within_a_visit(
        cohort: Cohort, hierarchy: Hierarchy) -> None:
    rank = np.arange(hierarchy.n_categories)
    head = fit_code_head(hierarchy, cohort, rank, epochs=1, **TINY_HEAD)
    rng = np.random.default_rng(7)
    # 3,000 visits of 0-7 categories drawn with replacement: repeats of two-code categories
    # (250, 401) often outnumber their codes; empty visits too.
    lengths = rng.integers(0, 8, size=3000)
    vo = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cats = rng.integers(0, hierarchy.n_categories, size=int(vo[-1])).astype(np.int32)
    strata = rng.integers(0, 4, size=lengths.size)
    codes = head.sample_visits(cats, vo, strata, seed=11)
    assert codes.dtype == np.int32 and codes.shape == cats.shape
    assert (hierarchy.code_category[codes] == cats).all()
    size = np.diff(hierarchy.offsets)
    visit = np.repeat(np.arange(lengths.size), lengths)
    for v in range(lengths.size):
        mine = visit == v
        for c, m in zip(*np.unique(cats[mine], return_counts=True), strict=True):
            drawn = codes[mine & (cats == c)]
            assert np.unique(drawn).size == min(m, size[c])


def test_same_seed_same_codes_other_seed_other_codes(
        heads: dict[bool, CodeHeadSampler], link_draws: tuple[np.ndarray, np.ndarray]) -> None:
    cats, vo = link_draws
    head = heads[True]
    a = head.sample_visits(cats, vo, seed=5)
    assert np.array_equal(a, head.sample_visits(cats, vo, 0, seed=5, threads=1))
    assert not np.array_equal(a, head.sample_visits(cats, vo, seed=6))


def test_save_load_round_trip_gives_identical_draws(
        tmp_path: Path, heads: dict[bool, CodeHeadSampler],
        link_draws: tuple[np.ndarray, np.ndarray]) -> None:
    cats, vo = link_draws
    for ar, head in heads.items():
        head.save(tmp_path / str(ar))
        loaded = CodeHeadSampler.load(tmp_path / str(ar))
        assert loaded.autoregressive is ar
        assert np.array_equal(loaded.rank, head.rank)
        for seed in (1, 2):
            assert np.array_equal(loaded.sample_visits(cats, vo, seed=seed),
                                  head.sample_visits(cats, vo, seed=seed))


def test_load_names_the_missing_or_corrupt_file(
        tmp_path: Path, heads: dict[bool, CodeHeadSampler]) -> None:
    with pytest.raises(ModelError, match="code_head.json: no such file"):
        CodeHeadSampler.load(tmp_path / "nowhere")
    heads[True].save(tmp_path)
    (tmp_path / "code_head.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="code_head.safetensors: unreadable"):
        CodeHeadSampler.load(tmp_path)
    (tmp_path / "code_head.json").write_text("{")
    with pytest.raises(ModelError, match="code_head.json: unreadable"):
        CodeHeadSampler.load(tmp_path)


@pytest.mark.parametrize(("option", "value", "match"), [
    ("epochs", -1, "epochs: expected an integer >= 0, got -1"),
    ("dim", 0, "dim: expected an integer >= 1"),
    ("hidden", 2.5, "hidden: expected an integer"),
    ("batch", 0, "batch: expected"),
    ("lr", 0.0, "lr: expected a finite number > 0"),
    ("val_fraction", 1.0, "val_fraction: expected a number in"),
    ("rank", np.zeros(2, dtype=np.int32), r"rank: expected shape \(3,\)"),
    ("rank", np.zeros(3), "rank: expected integers"),
])
def test_fit_rejects_bad_parameters(link: tuple[Hierarchy, Cohort, np.ndarray], option: str,
                                    value: object, match: str) -> None:
    hierarchy, cohort, rank = link
    kwargs: dict[str, Any] = {"rank": rank, "epochs": 1, **TINY_HEAD, option: value}
    with pytest.raises(ValueError, match=match):
        fit_code_head(hierarchy, cohort, **kwargs)


def test_fit_rejects_an_empty_cohort(link: tuple[Hierarchy, Cohort, np.ndarray]) -> None:
    hierarchy, cohort, rank = link
    empty = cohort.select_visits(np.zeros(cohort.n_visits, dtype=bool))
    with pytest.raises(ValueError, match="cohort: no codes"):
        fit_code_head(hierarchy, empty, rank, epochs=1)


@pytest.mark.parametrize(("cats", "vo", "strata", "threads", "match"), [
    ([0, 5], [0, 2], None, None, "categories: id 5 out of range"),
    ([0, -1], [0, 2], None, None, "categories: id -1 out of range"),
    ([0.0, 1.0], [0, 2], None, None, "categories: expected integers"),
    ([0, 1], [1, 2], None, None, "visit_offsets: expected non-decreasing offsets from 0"),
    ([0, 1], [0, 1], None, None, "visit_offsets: .* len.categories. = 2"),
    ([0, 1], [0, 2, 1, 2], None, None, "visit_offsets: expected non-decreasing"),
    ([0, 1], [0, 1, 2], [0, 1, 0], None, r"strata: expected one per visit \(2\)"),
    ([0, 1], [0, 1, 2], [0, 99], None, "strata: ids must be in"),
    ([0, 1], [0, 1, 2], None, 0, "threads: expected an integer >= 1"),
])
def test_sample_rejects_bad_inputs(heads: dict[bool, CodeHeadSampler], cats: list,
                                   vo: list, strata: list | None, threads: int | None,
                                   match: str) -> None:
    with pytest.raises(ValueError, match=match):
        heads[True].sample_visits(np.asarray(cats), np.asarray(vo), strata, seed=0,
                                  threads=threads)


def test_threads_setting_is_restored(heads: dict[bool, CodeHeadSampler]) -> None:
    before = torch.get_num_threads()
    heads[False].sample_visits(np.array([0, 1]), np.array([0, 2]), seed=0, threads=1)
    assert torch.get_num_threads() == before
