"""Tests of the markov Stage-1 generator: conditioning, diversity, sampling law, likelihood,
checkpoints, and NHDS 2010 when ../shared/data is present."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_generator_contract import (
    FEMALE_ONLY,
    MALE_ONLY,
    NEWBORN_ONLY,
    OLD_ONLY,
    make_cohort,
    make_hierarchy,
)

from hiergen.cohort import Cohort
from hiergen.errors import DataError, ModelError
from hiergen.generators.base import CategoryPatients
from hiergen.generators.checkpoint import CONFIG_FILE, load_checkpoint, save_checkpoint
from hiergen.generators.markov import MarkovGenerator
from hiergen.generators.markov_classes import fit_visit_classes
from hiergen.generators.markov_context import (
    derivable_levels,
    feature_sizes,
    length_bucket,
    projection,
)
from hiergen.generators.markov_tables import (
    CountLevel,
    HashIndex,
    LazyKeys,
    marginalise,
    pack_uint,
    unpack_uint,
)
from hiergen.hierarchy import Hierarchy


@cache
def cohort() -> Cohort:
    return make_cohort(1500, seed=11)


@cache
def fitted(order: int = 2) -> MarkovGenerator:
    gen = MarkovGenerator(order=order)
    gen.fit(cohort(), make_hierarchy())
    return gen


def ids(hierarchy: Hierarchy, cats: tuple[str, ...]) -> np.ndarray:
    return np.array([hierarchy.category_id(c) for c in cats])


def visit_sets(out: CategoryPatients) -> list[set[int]]:
    return [
        set(out.categories[out.visit_offsets[v] : out.visit_offsets[v + 1]].tolist())
        for v in range(out.n_visits)
    ]


@pytest.mark.parametrize("order", [1, 2])
def test_sex_only_categories_never_cross(order: int) -> None:
    gen = fitted(order)
    h = make_hierarchy()
    n = 4000
    ages = np.tile([0.2, 10.0, 30.0, 50.0, 70.0, 85.0], n // 6 + 1)[:n]
    men = gen.sample(ages, np.zeros(n, dtype=np.int8), seed=1)
    women = gen.sample(ages, np.ones(n, dtype=np.int8), seed=2)
    assert not np.isin(men.categories, ids(h, FEMALE_ONLY)).any()
    assert not np.isin(women.categories, ids(h, MALE_ONLY)).any()
    # ... and they are generated for the sex that has them.
    assert np.isin(women.categories, ids(h, FEMALE_ONLY)).sum() > 100
    assert np.isin(men.categories, ids(h, MALE_ONLY)).sum() > 100


def distribution(gen: MarkovGenerator, sex: int, age: float, **features: int) -> np.ndarray:
    """``P(category | context)`` of one context; unset category features are "none"."""
    none = gen.n_categories
    values: dict[str, np.ndarray] = {"stratum": gen.strata([sex], [age])}
    for name in ("prev1", "prev2", "first", "prevvisit"):
        values[name] = np.array([features.get(name, none)])
    values["len"] = length_bucket([features.get("length", 1)])
    values["left"] = length_bucket([features.get("left", 1)])
    values["cls"] = np.array([features.get("cls", 0)])
    keys = gen._transition_keys(values)
    return gen._tables["transitions"].distribution([int(k[0]) for k in keys])


def _contexts(gen: MarkovGenerator) -> list[dict[str, int]]:
    n_cls = gen.n_classes if gen._uses_classes else 1
    return [
        {"prev1": prev, "first": prev, "prev2": prev, "cls": k, "length": length}
        for prev in range(gen.n_categories + 1)
        for k in range(n_cls)
        for length in (4,)
    ]


@pytest.mark.parametrize("order", [1, 2])
def test_model_gives_sex_only_categories_zero_mass_for_the_other_sex(order: int) -> None:
    """Exact check of the back-off chain: no level leaks a category across sexes."""
    gen = fitted(order)
    h = make_hierarchy()
    for sex, banned in ((0, ids(h, FEMALE_ONLY)), (1, ids(h, MALE_ONLY))):
        for age in (0.5, 10.0, 30.0, 50.0, 70.0, 90.0):
            for ctx in _contexts(gen):
                p = distribution(gen, sex, age, **ctx)
                assert p.sum() == pytest.approx(1.0)
                assert (p[banned] == 0).all(), (sex, age, ctx)


@pytest.mark.parametrize("order", [1, 2])
def test_age_only_categories_get_zero_mass_outside_their_ages(order: int) -> None:
    """The plausibility leak of the first model: back-off levels pooled across age bands gave
    newborn-only categories to adults. Every level now stays within the stratum."""
    gen = fitted(order)
    h = make_hierarchy()
    for sex in (0, 1):
        for age, banned in ((5.0, NEWBORN_ONLY + OLD_ONLY), (30.0, NEWBORN_ONLY + OLD_ONLY),
                            (50.0, NEWBORN_ONLY + OLD_ONLY), (0.5, OLD_ONLY),
                            (80.0, NEWBORN_ONLY)):
            for ctx in _contexts(gen):
                p = distribution(gen, sex, age, **ctx)
                assert (p[ids(h, banned)] == 0).all(), (sex, age, ctx)
    out = gen.sample(np.linspace(1.0, 64.0, 4000), np.arange(4000) % 2, seed=6)
    young = np.repeat(out.visit_age < 65, np.diff(out.visit_offsets))
    assert not np.isin(out.categories[young], ids(h, NEWBORN_ONLY + OLD_ONLY)).any()
    assert np.isin(out.categories[~young], ids(h, OLD_ONLY)).any()


def _share_of_visits_with(out: CategoryPatients, cat_ids: np.ndarray) -> float:
    """Share of first visits (at the requested age) holding one of ``cat_ids``."""
    sets = visit_sets(out)
    return float(np.mean([bool(sets[v] & set(cat_ids.tolist())) for v in out.patient_offsets[:-1]]))


def test_age_linked_prevalence_moves_with_age() -> None:
    gen = fitted()
    h = make_hierarchy()
    n = 3000
    sex = np.arange(n) % 2
    by_age = {a: gen.sample(np.full(n, a), sex, seed=5) for a in (0.1, 30.0, 80.0)}
    old = ids(h, OLD_ONLY)
    newborn = ids(h, NEWBORN_ONLY)
    # Training shares: old-only categories in about 60% of visits at 65+, never below 65.
    assert _share_of_visits_with(by_age[80.0], old) > 0.4
    assert _share_of_visits_with(by_age[30.0], old) < 0.02
    assert _share_of_visits_with(by_age[0.1], newborn) > 0.9
    assert _share_of_visits_with(by_age[30.0], newborn) < 0.02
    # Later visits carry older ages (gaps of 0.5-3 years in training).
    out = by_age[30.0]
    nv = np.diff(out.patient_offsets)
    later = np.ones(out.n_visits, dtype=bool)
    later[out.patient_offsets[:-1]] = False
    gaps = np.diff(out.visit_age)[later[1:]]
    assert (nv > 1).any() and gaps.min() >= 0.5 - 1e-4 and gaps.max() <= 3.0 + 1e-4


def test_diversity_close_to_training() -> None:
    """Rules out mode collapse (the design page's 100 patients, 2 categories each)."""
    gen = fitted()
    real = cohort()
    first = real.patient_offsets[:-1]
    out = gen.sample(real.age[first], real.sex[first], seed=8)
    real_lengths = real.visit_lengths.astype(float)
    fake_lengths = np.diff(out.visit_offsets).astype(float)
    se_len = real_lengths.std() * np.sqrt(1 / real_lengths.size + 1 / fake_lengths.size)
    assert abs(fake_lengths.mean() - real_lengths.mean()) < 5 * se_len
    assert np.unique(fake_lengths).size >= np.unique(real_lengths).size - 1
    real_nv = real.visits_per_patient.astype(float)
    fake_nv = np.diff(out.patient_offsets).astype(float)
    se_nv = real_nv.std() * np.sqrt(2 / real_nv.size)
    assert abs(fake_nv.mean() - real_nv.mean()) < 5 * se_nv
    real_cats = np.unique(real.category_ids_in(make_hierarchy()))
    assert np.unique(out.categories).size == real_cats.size
    # Distinct category sets per visit: the generator does not repeat a few templates.
    fake_sets = {tuple(sorted(s)) for s in visit_sets(out)}
    real_cat = real.category_ids_in(make_hierarchy())
    real_sets = {
        tuple(sorted(set(real_cat[a:b].tolist())))
        for a, b in zip(real.visit_offsets[:-1], real.visit_offsets[1:], strict=True)
    }
    assert len(fake_sets) > 0.8 * len(real_sets) * out.n_visits / real.n_visits


def test_repeat_cap_follows_codes_per_category() -> None:
    gen = fitted()
    h = make_hierarchy()
    cap = np.diff(h.offsets)
    out = gen.sample(np.linspace(0, 90, 3000), np.arange(3000) % 2, seed=4)
    repeated = 0
    for v in range(out.n_visits):
        cats = out.categories[out.visit_offsets[v] : out.visit_offsets[v + 1]]
        counts = np.bincount(cats, minlength=h.n_categories)
        assert (counts <= cap).all()
        repeated += int((counts > 1).any())
    assert repeated > 0, "categories with several codes should sometimes repeat (as in training)"


def test_first_category_follows_the_model() -> None:
    """Sampled first categories of a stratum match P(c | start, stratum) within 5 sigma
    (the order-1 chain: no visit classes to sum over)."""
    gen = fitted(1)
    h = make_hierarchy()
    n = 20000
    age, sex = 50.0, 0
    out = gen.sample(np.full(n, age), np.full(n, sex), seed=12)
    first_visit_first_cat = out.categories[out.visit_offsets[out.patient_offsets[:-1]]]
    lengths = np.diff(out.visit_offsets)[out.patient_offsets[:-1]]
    observed = np.bincount(first_visit_first_cat[lengths > 0], minlength=h.n_categories)
    m = int((lengths > 0).sum())
    p = distribution(gen, sex, age)
    assert p.sum() == pytest.approx(1.0)
    freq = observed / m
    tol = 5 * np.sqrt(p * (1 - p) / m) + 1e-9
    assert (np.abs(freq - p) <= tol).all()


@pytest.mark.parametrize("table", ["transitions", "lengths", "visits", "classes"])
def test_distributions_sum_to_one(table: str) -> None:
    gen = fitted()
    t = gen._tables[table]
    rng = np.random.default_rng(0)
    for _ in range(20):
        keys = [int(rng.integers(0, lv.n_contexts)) for lv in t.levels]
        p = t.distribution(keys)
        assert p.min() >= 0
        assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_log_likelihood_tokens_and_values() -> None:
    gen = fitted()
    real = cohort()
    total, n_tokens = gen.log_likelihood(real)
    assert n_tokens == real.n_rows + real.n_visits
    per_token = total / n_tokens
    # Far better than choosing uniformly among the categories, and finite.
    assert np.isfinite(per_token) and 0 < per_token < np.log(make_hierarchy().n_categories)
    held_out = make_cohort(300, seed=99)
    ho_total, ho_tokens = gen.log_likelihood(held_out)
    assert ho_total / ho_tokens > per_token - 0.5
    parts = gen.nll_parts(real)
    assert parts["total"] == pytest.approx(
        parts["categories"] + parts["visit_lengths"] + parts["visits_per_patient"]
    )


def test_log_likelihood_of_a_category_unseen_in_training_is_finite() -> None:
    real = cohort()
    h = make_hierarchy()
    keep = ~np.isin(real.category_ids_in(h), ids(h, OLD_ONLY))
    rows = np.flatnonzero(keep)
    visit_of_row = np.repeat(np.arange(real.n_visits), real.visit_lengths)
    lengths = np.bincount(visit_of_row[rows], minlength=real.n_visits)
    vo = np.zeros(real.n_visits + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    reduced = Cohort(
        real.patient_ids, real.patient_offsets, vo, real.codes[rows], real.vocab, real.sex,
        real.age,
    )
    gen = MarkovGenerator()
    gen.fit(reduced, h)
    total, n = gen.log_likelihood(real)
    assert np.isfinite(total) and total / n > gen.log_likelihood(reduced)[0] / n


def test_single_category_cohort_is_refused() -> None:
    vocab = ("401.0", "401.9")
    one = Cohort(
        patient_ids=np.arange(3),
        patient_offsets=np.arange(4, dtype=np.int64),
        visit_offsets=np.array([0, 2, 3, 4], dtype=np.int64),
        codes=np.array([0, 1, 0, 1], dtype=np.int32),
        vocab=vocab,
        sex=np.array([0, 1, 0], dtype=np.int8),
        age=np.array([30, 40, 50], dtype=np.float32),
    )
    h = Hierarchy.from_codes(vocab, category_of=lambda c: c[:3])
    with pytest.raises(DataError, match="single category.*'401'"):
        MarkovGenerator().fit(one, h)


def test_code_missing_from_hierarchy_is_a_data_error() -> None:
    h = Hierarchy.from_codes(["401.0", "250.00"], category_of=lambda c: c[:3])
    with pytest.raises(DataError, match="not in the hierarchy"):
        MarkovGenerator().fit(cohort(), h)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="order"):
        MarkovGenerator(order=3)
    with pytest.raises(ValueError, match="smoothing"):
        MarkovGenerator(smoothing=0.0)


def test_batches_are_concatenated_consistently() -> None:
    gen = MarkovGenerator(batch_size=64)
    gen.fit(cohort(), make_hierarchy())
    out = gen.sample(np.linspace(0, 90, 300), np.arange(300) % 2, seed=3)
    assert out.n_patients == 300
    assert out.patient_offsets[-1] == out.n_visits
    assert out.visit_offsets[-1] == out.categories.size
    assert (np.diff(out.patient_offsets) >= 1).all()


@given(st.lists(st.integers(0, 2**40), unique=True, max_size=300), st.integers(0, 2**40))
@settings(max_examples=50, deadline=None)
def test_hash_index_finds_exactly_the_stored_keys(keys: list[int], probe: int) -> None:
    arr = np.asarray(keys, dtype=np.int64)
    index = HashIndex(arr)
    np.testing.assert_array_equal(index.lookup(arr), np.arange(arr.size))
    expected = keys.index(probe) if probe in keys else -1
    assert index.lookup(np.array([probe]))[0] == expected


def test_gaps_learned_from_visit_times() -> None:
    """With times, the age of later visits advances by the time gaps (2 years here)."""
    n = 200
    rng = np.random.default_rng(0)
    vocab = ("401.9", "250.00", "272.4")
    lengths = rng.integers(1, 3, 2 * n)
    codes = np.concatenate([rng.choice(3, k, replace=False) for k in lengths]).astype(np.int32)
    vo = np.zeros(2 * n + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    t0 = np.datetime64("2100-01-01T00:00:00")
    two_years = np.timedelta64(int(2 * 365.25 * 86400), "s")
    times = np.repeat(t0 + np.arange(n) * np.timedelta64(86400, "s"), 2)
    times[1::2] += two_years
    two_visits = Cohort(
        patient_ids=np.arange(n),
        patient_offsets=np.arange(0, 2 * n + 1, 2, dtype=np.int64),
        visit_offsets=vo,
        codes=codes,
        vocab=vocab,
        sex=np.repeat(rng.integers(0, 2, n), 2).astype(np.int8),
        age=np.full(2 * n, 50.0, dtype=np.float32),  # ages in whole years hide the gap
        time=times,
    )
    gen = MarkovGenerator()
    gen.fit(two_visits, Hierarchy.from_codes(vocab, category_of=lambda c: c[:3]))
    out = gen.sample(np.full(50, 30.0), np.zeros(50, dtype=np.int8), seed=0)
    assert (np.diff(out.patient_offsets) == 2).all()
    np.testing.assert_allclose(out.visit_age[1::2] - out.visit_age[::2], 2.0, atol=1e-4)


def _two_type_cohort(n: int, seed: int) -> tuple[Cohort, Hierarchy]:
    """Patients of two kinds kept across their 3 visits: chronic (250, 401, 272 and one more
    code) or acute (486, 599, 780 and one more)."""
    rng = np.random.default_rng(seed)
    vocab = ("250.00", "401.9", "272.4", "486", "599.0", "780.6", "V15.82", "428.0")
    chronic = rng.random(n) < 0.5
    rows: list[int] = []
    lengths: list[int] = []
    for p in range(n):
        for _ in range(3):
            visit = [0, 1, 2] if chronic[p] else [3, 4, 5]
            visit = [int(c) for c in rng.permutation(visit)] + [int(rng.integers(6, 8))]
            rows += visit
            lengths.append(len(visit))
    vo = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    cohort = Cohort(
        patient_ids=np.arange(n),
        patient_offsets=np.arange(0, 3 * n + 1, 3, dtype=np.int64),
        visit_offsets=vo,
        codes=np.asarray(rows, dtype=np.int32),
        vocab=vocab,
        sex=np.repeat(rng.integers(0, 2, n), 3).astype(np.int8),
        age=np.repeat(rng.uniform(40, 60, n), 3).astype(np.float32),
    )
    return cohort, Hierarchy.from_codes(vocab, category_of=lambda c: c[:3])


def test_later_visits_follow_the_previous_visit() -> None:
    """The class of a visit depends on the class of the patient's previous visit, so a
    chronic patient stays chronic (independent visits would agree half of the time)."""
    cohort, h = _two_type_cohort(600, seed=3)
    gen = MarkovGenerator()
    gen.fit(cohort, h, seed=0)
    out = gen.sample(np.full(2000, 50.0), np.arange(2000) % 2, seed=1)
    chronic_cat = h.category_id("250")
    visit_chronic = np.array([
        chronic_cat in out.categories[out.visit_offsets[v] : out.visit_offsets[v + 1]]
        for v in range(out.n_visits)
    ])
    nv = np.diff(out.patient_offsets)
    assert (nv == 3).mean() > 0.95
    first = out.patient_offsets[:-1][nv >= 2]
    agree = (visit_chronic[first] == visit_chronic[first + 1]).mean()
    share = visit_chronic[first].mean()
    assert 0.4 < share < 0.6
    assert agree > 0.9, agree
    # The likelihood sums the classes out along the visits (a hidden Markov chain): a real
    # patient is far more likely than one whose kind flips between visits.
    flipped = cohort.select_patients(np.arange(2))
    total_real = gen.log_likelihood(flipped)[0]
    mixed_codes = flipped.codes.copy()
    second = slice(int(flipped.visit_offsets[1]), int(flipped.visit_offsets[2]))
    kinds = {0: 3, 1: 4, 2: 5, 3: 0, 4: 1, 5: 2}
    mixed_codes[second] = [kinds.get(int(c), int(c)) for c in mixed_codes[second]]
    mixed = Cohort(
        flipped.patient_ids, flipped.patient_offsets, flipped.visit_offsets, mixed_codes,
        flipped.vocab, flipped.sex, flipped.age,
    )
    assert gen.log_likelihood(mixed)[0] > total_real + 2.0


# --- checkpoints ---------------------------------------------------------------------------
def test_checkpoint_other_format_version(tmp_path: Path) -> None:
    fitted().save(tmp_path)
    header = json.loads((tmp_path / CONFIG_FILE).read_text())
    header["format_version"] = 999
    (tmp_path / CONFIG_FILE).write_text(json.dumps(header))
    with pytest.raises(ModelError, match="format_version 999"):
        MarkovGenerator.load(tmp_path)


def test_checkpoint_of_an_older_markov_format(tmp_path: Path) -> None:
    fitted().save(tmp_path / "a")
    ckpt = load_checkpoint(tmp_path / "a")
    config = {k: v for k, v in ckpt.config.items() if k != "markov_format"}  # as format 1 wrote
    save_checkpoint(tmp_path / "b", "markov", config, ckpt.arrays)
    with pytest.raises(ModelError, match="markov checkpoint format 1"):
        MarkovGenerator.load(tmp_path / "b")


@pytest.mark.parametrize("version", [2, 99])
def test_checkpoint_of_another_markov_format_asks_to_retrain(tmp_path: Path, version: int) -> None:
    fitted().save(tmp_path / "a")
    ckpt = load_checkpoint(tmp_path / "a")
    config = {**ckpt.config, "markov_format": version}
    save_checkpoint(tmp_path / "b", "markov", config, ckpt.arrays)
    with pytest.raises(ModelError, match=f"format {version} is not .*retrain the model"):
        MarkovGenerator.load(tmp_path / "b")


@pytest.mark.parametrize("order", [1, 2])
def test_checkpoint_round_trip_is_exact(tmp_path: Path, order: int) -> None:
    """The compact format (narrow types, derived levels) rebuilds every table exactly, so a
    loaded model samples what the fitted one samples for the same seed."""
    gen = fitted(order)
    gen.save(tmp_path)
    again = MarkovGenerator.load(tmp_path)
    assert set(again._tables) == set(gen._tables)
    for name, table in gen._tables.items():
        for a, b in zip(table.levels, again._tables[name].levels, strict=True):
            for field in ("ctx_keys", "row_start", "tokens", "counts"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
            assert (a.n_contexts, a.terminal) == (b.n_contexts, b.terminal)
    np.testing.assert_array_equal(again._rank, gen._rank)
    ages, sexes = np.linspace(0, 90, 500), np.arange(500) % 2
    x, y = gen.sample(ages, sexes, seed=4), again.sample(ages, sexes, seed=4)
    for field in ("patient_offsets", "visit_offsets", "categories", "visit_age"):
        np.testing.assert_array_equal(getattr(x, field), getattr(y, field))


def test_checkpoint_stores_only_maximal_levels_in_narrow_types(tmp_path: Path) -> None:
    gen = fitted(2)
    gen.save(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    levels = ckpt.config["tables"]["transitions"]["levels"]
    derived = {i for i, meta in enumerate(levels) if "derived_from" in meta}
    assert derived == set(derivable_levels(gen.context)) and derived
    for i in range(len(levels)):
        stored = f"transitions.{i}.tokens" in ckpt.arrays
        assert stored == (i not in derived)
    wide = [k for k, a in ckpt.arrays.items() if a.dtype.itemsize == 8 and a.dtype.kind != "f"]
    assert wide == []
    assert ckpt.arrays["transitions.0.tokens"].dtype == np.uint8  # 20 fixture categories


def test_checkpoint_derived_from_a_missing_level(tmp_path: Path) -> None:
    fitted().save(tmp_path / "a")
    ckpt = load_checkpoint(tmp_path / "a")
    config = json.loads(json.dumps(ckpt.config))
    levels = config["tables"]["transitions"]["levels"]
    i = next(i for i, meta in enumerate(levels) if "derived_from" in meta)
    levels[i]["derived_from"] = i  # itself: not stored
    save_checkpoint(tmp_path / "b", "markov", config, ckpt.arrays)
    with pytest.raises(ModelError, match="inconsistent"):
        MarkovGenerator.load(tmp_path / "b")


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 2**40), max_size=60),
    small=st.lists(st.integers(0, 300), max_size=200),
)
def test_pack_uint_round_trips(values: list[int], small: list[int]) -> None:
    for data in (values, small, small + values[:2]):
        packed = pack_uint("x", data)
        assert all(a.dtype.kind == "u" for a in packed.values())
        np.testing.assert_array_equal(unpack_uint("x", packed), np.asarray(data, dtype=np.int64))
        plain = np.asarray(data, dtype=np.int64)
        if plain.size and plain.max() > 0:  # never larger than the narrowest plain type
            width = np.min_scalar_type(int(plain.max())).itemsize
            assert sum(a.nbytes for a in packed.values()) <= plain.size * max(width, 1)


def test_pack_uint_escapes_mostly_small_counts() -> None:
    counts = np.ones(1000, dtype=np.int64)
    counts[[3, 500]] = [70_000, 300]
    packed = pack_uint("c", counts)
    assert packed["c"].dtype == np.uint8 and packed["c.big"].tolist() == [70_000, 300]
    np.testing.assert_array_equal(unpack_uint("c", packed), counts)
    packed["c.big_at"] = packed["c.big_at"][:1]
    packed["c.big"] = packed["c.big"][:1]
    with pytest.raises(ValueError, match="escape"):
        unpack_uint("c", packed)
    with pytest.raises(ValueError, match="negative"):
        pack_uint("c", [-1])


def test_marginalise_equals_counting_the_coarser_keys() -> None:
    rng = np.random.default_rng(0)
    levels = [("stratum", "cls", "len", "prev1"), ("stratum", "prev1"), ("cls",), ()]
    sizes = feature_sizes(n_categories=9, n_bands=3, n_classes=4)
    n = 5000
    vals = {
        "stratum": rng.integers(0, 6, n), "cls": rng.integers(0, 4, n),
        "len": rng.integers(0, sizes["len"], n), "prev1": rng.integers(0, 10, n),
    }
    tokens = rng.integers(0, 9, n)

    def keys(feats: tuple[str, ...]) -> np.ndarray:
        k = np.zeros(n, dtype=np.int64)
        for f in feats:
            k = k * sizes[f] + vals[f]
        return k

    n_ctx = [int(np.prod([sizes[f] for f in feats])) for feats in levels]
    fine = CountLevel.from_observations(keys(levels[0]), tokens, n_ctx[0], 9)
    for target in range(1, len(levels)):
        coarse = CountLevel.from_observations(keys(levels[target]), tokens, n_ctx[target], 9)
        got = marginalise(fine, projection(levels[0], levels[target], sizes), n_ctx[target], 9)
        for field in ("ctx_keys", "row_start", "tokens", "counts"):
            np.testing.assert_array_equal(getattr(got, field), getattr(coarse, field))
    with pytest.raises(ValueError, match="not a projection"):
        projection(levels[1], levels[0], sizes)


def test_checkpoint_corrupt_json(tmp_path: Path) -> None:
    fitted().save(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="corrupt JSON"):
        MarkovGenerator.load(tmp_path)


def test_checkpoint_of_another_kind(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, "lstm", {"d": 1}, {"w": np.zeros(3)})
    with pytest.raises(ModelError, match="'lstm' checkpoint"):
        MarkovGenerator.load(tmp_path)


def test_checkpoint_inconsistent_arrays(tmp_path: Path) -> None:
    fitted().save(tmp_path / "a")
    ckpt = load_checkpoint(tmp_path / "a")
    arrays = dict(ckpt.arrays)
    arrays["transitions.1.tokens"] = arrays["transitions.1.tokens"].astype(np.int64) + 10_000
    save_checkpoint(tmp_path / "b", "markov", ckpt.config, arrays)
    with pytest.raises(ModelError, match="inconsistent"):
        MarkovGenerator.load(tmp_path / "b")


def test_checkpoint_keeps_summary_and_hierarchy(tmp_path: Path) -> None:
    fitted().save(tmp_path)
    again = MarkovGenerator.load(tmp_path)
    assert again.summary["n_patients"] == cohort().n_patients
    assert again.hierarchy is not None
    assert again.hierarchy.categories == make_hierarchy().categories
    assert again.log_likelihood(cohort()) == pytest.approx(fitted().log_likelihood(cohort()))


def test_checkpoint_rejects_strings_and_nan(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dtype"):
        save_checkpoint(tmp_path, "x", {}, {"s": np.array(["a"])})
    with pytest.raises(ValueError, match="NaN"):
        save_checkpoint(tmp_path, "x", {"v": float("nan")}, {})


def test_plugin_registers_markov() -> None:
    from hiergen.generators._plugin import hiergen_generators

    specs = hiergen_generators()
    assert [s.name for s in specs] == ["markov"]
    assert specs[0].cls is MarkovGenerator


# --- NHDS 2010 -----------------------------------------------------------------------------
def _nhds_category(code: str) -> str:
    return code[:4] if code.startswith("E") else code[:3]


def _load_nhds(path: Path) -> Cohort:
    try:
        from hiergen.loaders.nhds import load_nhds
    except ImportError:
        pytest.skip("hiergen.loaders.nhds is not available")
    return load_nhds(path)[0]


@pytest.mark.slow
def test_nhds_diversity_and_conditioning(nhds_path: Path) -> None:
    real = _load_nhds(nhds_path)
    h = Hierarchy.from_codes(real.vocab, category_of=_nhds_category)
    train, held_out = real.split(0.2, seed=0)
    gen = MarkovGenerator()
    gen.fit(train, h)
    out = gen.sample(held_out.age, held_out.sex, seed=0)
    assert out.n_visits == held_out.n_visits  # one visit per NHDS record
    real_len = held_out.visit_lengths
    fake_len = np.diff(out.visit_offsets)
    assert abs(fake_len.mean() - real_len.mean()) < 0.05
    real_distinct = np.unique(held_out.category_ids_in(h)).size
    assert np.unique(out.categories).size > 0.9 * real_distinct
    # Pregnancy categories (630-679) are never drawn for men.
    cats = np.array([c[:3].isdigit() and 630 <= int(c[:3]) <= 679 for c in h.categories])
    male_visit = np.repeat(out.visit_sex == 0, fake_len)
    train_cats = train.category_ids_in(h)
    train_male = np.repeat(train.sex == 0, train.visit_lengths)
    if not cats[train_cats[train_male]].any():
        assert not cats[out.categories[male_visit]].any()
    assert cats[out.categories[~male_visit]].any()
    total, n = gen.log_likelihood(held_out)
    assert 3.0 < total / n < 5.5
    # Newborn-only categories (V30-V39, 760-779) at age 1 or more: about as rare as in the
    # real data (the first model, backing off across age bands, put them in 0.7-10.7% of
    # visits). Tolerance: 5 standard errors of the difference of two rates.
    newborn = np.array([
        (c.startswith("V3") and c[:3] <= "V39") or (c[:3].isdigit() and 760 <= int(c[:3]) <= 779)
        for c in h.categories
    ])

    def newborn_rate(vo: np.ndarray, cats: np.ndarray, age: np.ndarray) -> float:
        per_visit = np.add.reduceat(newborn[cats].astype(np.int64), vo[:-1][np.diff(vo) > 0])
        has = np.zeros(vo.size - 1, dtype=bool)
        has[np.diff(vo) > 0] = per_visit > 0
        return float((has & (age >= 1)).mean())

    real_rate = newborn_rate(held_out.visit_offsets, held_out.category_ids_in(h), held_out.age)
    fake_rate = newborn_rate(out.visit_offsets, out.categories, out.visit_age)
    se = np.sqrt(2 * max(real_rate, 1 / held_out.n_visits) / held_out.n_visits)
    assert fake_rate <= real_rate + 5 * se, (fake_rate, real_rate)


# --- own-code categories (frequent codes split off their category) -------------------------
PARENT_CHAIN = (
    "stratum.cls.first.prev1,stratum.cls.pfirst.pprev1,stratum.cls.pprev1,stratum.pprev1,"
    "stratum.cls,stratum"
)


@cache
def own_code_hierarchy() -> Hierarchy:
    return Hierarchy.from_codes(
        cohort().vocab, category_of=lambda c: c[:3], own_categories=["401.9", "250.00", "272.4"]
    )


@cache
def fitted_own_codes() -> MarkovGenerator:
    gen = MarkovGenerator(context=PARENT_CHAIN, group_parents=True, n_classes=4)
    gen.fit(cohort(), own_code_hierarchy())
    return gen


def test_parent_features_map_split_codes_to_their_category() -> None:
    gen = fitted_own_codes()
    h = own_code_hierarchy()
    parent = gen._parent
    assert parent.size == h.n_categories + 1 and parent[-1] == gen.n_parents
    assert gen.n_parents == h.n_categories - 3
    for code in ("401.9", "250.00", "272.4"):
        assert parent[h.category_id(code)] == parent[h.category_id(code[:3])]
    assert parent[h.category_id("401")] != parent[h.category_id("250")]
    sizes = feature_sizes(h.n_categories, gen.n_bands, gen.n_classes, gen.n_parents)
    assert sizes["pprev1"] == sizes["pfirst"] == gen.n_parents + 1
    assert sizes["prev1"] == h.n_categories + 1


def test_group_parents_keeps_split_codes_next_to_their_category() -> None:
    def split_runs(g: MarkovGenerator) -> int:
        """(stratum, parent) pairs whose categories are not one contiguous run of ranks."""
        parent = g._parent[:-1]
        n = 0
        for s in range(g._rank.shape[0]):
            for p in np.unique(parent):
                ranks = np.sort(g._rank[s, parent == p])
                n += int(ranks[-1] - ranks[0] != ranks.size - 1)
        return n

    assert split_runs(fitted_own_codes()) == 0
    # without the option, a split code is ranked by its own count (not beside its category)
    plain = MarkovGenerator(context=PARENT_CHAIN, n_classes=4)
    plain.fit(cohort(), own_code_hierarchy())
    assert not plain.group_parents and split_runs(plain) > 0


def test_own_code_model_samples_valid_tokens_and_round_trips(tmp_path: Path) -> None:
    gen = fitted_own_codes()
    h = own_code_hierarchy()
    ages, sexes = np.linspace(0, 90, 2000), np.arange(2000) % 2
    out = gen.sample(ages, sexes, seed=3)
    assert out.categories.min() >= 0 and out.categories.max() < h.n_categories
    drawn = np.bincount(out.categories, minlength=h.n_categories)
    assert drawn[h.category_id("401.9")] > 0 and drawn[h.category_id("401")] > 0
    gen.save(tmp_path)
    again = MarkovGenerator.load(tmp_path)
    assert again.group_parents and again.n_parents == gen.n_parents
    y = again.sample(ages, sexes, seed=3)
    for field in ("patient_offsets", "visit_offsets", "categories"):
        np.testing.assert_array_equal(getattr(out, field), getattr(y, field))
    total, n_tok = again.log_likelihood(cohort())
    assert np.isfinite(total) and n_tok > 0


def test_checkpoint_without_group_parents_key_still_loads(tmp_path: Path) -> None:
    """Format-3 checkpoints written before the option existed load with it off."""
    gen = fitted(2)
    gen.save(tmp_path / "a")
    ckpt = load_checkpoint(tmp_path / "a")
    config = {k: v for k, v in ckpt.config.items() if k != "group_parents"}
    save_checkpoint(tmp_path / "b", "markov", config, ckpt.arrays)
    again = MarkovGenerator.load(tmp_path / "b")
    assert not again.group_parents
    ages, sexes = np.linspace(0, 90, 300), np.arange(300) % 2
    np.testing.assert_array_equal(
        gen.sample(ages, sexes, seed=2).categories, again.sample(ages, sexes, seed=2).categories
    )


@pytest.mark.parametrize("redraws", [0, 2, 8])
def test_repeat_cap_redraws_follow_the_restricted_distribution(redraws: int) -> None:
    """Batched rejection and the exact fallback both draw from the context's distribution
    with the categories at their cap removed."""
    gen = MarkovGenerator(order=1, max_redraws=redraws)
    gen.fit(cohort(), make_hierarchy())
    h = make_hierarchy()
    full = h.category_id("428")  # one code: at its cap once drawn
    prev = h.category_id("401")
    n = 20_000
    stratum = int(gen.strata(np.array([0]), np.array([50.0]))[0])
    values = {"stratum": np.full(n, stratum), "prev1": np.full(n, prev)}
    keys = gen._transition_keys(values)
    p = gen._tables["transitions"].distribution([int(k[0]) for k in keys])
    p[full] = 0.0
    p /= p.sum()
    earlier = np.full((n, 1), full, dtype=np.int32)
    tok = np.full(n, full, dtype=np.int32)
    out = gen._enforce_cap(earlier, tok, LazyKeys.of(keys), np.random.default_rng(5))
    assert (out != full).all() and (out >= 0).all()
    freq = np.bincount(out, minlength=p.size) / n
    tol = 4 * np.sqrt(p * (1 - p) / n) + 1e-3
    assert (np.abs(freq - p) <= tol).all()


def test_class_assignment_map_takes_the_most_probable_class() -> None:
    """Two disjoint groups of categories: the most probable class of a visit is its group's,
    so MAP classes are pure; ``assign`` is validated."""
    rng = np.random.default_rng(0)
    n, c = 600, 10
    group = np.arange(n) % 2
    lengths = rng.integers(2, 5, n)
    cats = np.concatenate(
        [rng.choice(5, k, replace=False) + 5 * g for k, g in zip(lengths, group, strict=True)]
    ).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cls = fit_visit_classes(offsets, cats, c, 2, iterations=20, seed=1, assign="map")
    assert len({(int(g), int(k)) for g, k in zip(group, cls, strict=True)}) == 2
    with pytest.raises(ValueError, match="assign"):
        fit_visit_classes(offsets, cats, c, 2, assign="best")
    with pytest.raises(ValueError, match="class_assignment"):
        MarkovGenerator(class_assignment="best")


def test_parent_levels_are_derived_from_the_category_levels(tmp_path: Path) -> None:
    """``stratum.cls.pfirst.pprev1`` is a function of ``stratum.cls.first.prev1``: it is not
    stored, and is rebuilt exactly at load."""
    gen = fitted_own_codes()
    derived = derivable_levels(gen.context)
    assert derived[1] == [0]  # pfirst.pprev1 from first.prev1
    gen.save(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert not any(k.startswith("transitions.1.") for k in ckpt.arrays)
    again = MarkovGenerator.load(tmp_path)
    for a, b in zip(gen._tables["transitions"].levels, again._tables["transitions"].levels,
                    strict=True):
        for field in ("ctx_keys", "row_start", "tokens", "counts"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
