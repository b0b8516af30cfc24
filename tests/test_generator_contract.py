"""The contract every Stage-1 generator must meet, parametrised over generator factories.

To run it on another generator (e.g. the torch plugin), add a factory to ``FACTORIES`` below
(guarded with ``pytest.importorskip`` inside the factory), or import :class:`GeneratorContract`
and subclass it with a ``make_generator`` fixture. ``make_cohort`` builds the hand-made
training cohort the tests use; other test modules import it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hiergen.cohort import Cohort
from hiergen.errors import HiergenError, ModelError
from hiergen.generators.base import CategoryPatients, Stage1Generator
from hiergen.hierarchy import Hierarchy

# --- a hand-made cohort with sex-only and age-linked categories --------------------------
CODES: dict[str, tuple[str, ...]] = {
    # common to everyone
    "401": ("401.0", "401.1", "401.9"),
    "250": ("250.00", "250.01"),
    "272": ("272.0", "272.1", "272.4"),
    "428": ("428.0",),
    "486": ("486",),
    "599": ("599.0",),
    "780": ("780.1", "780.2", "780.6", "780.9"),
    "V15": ("V15.81", "V15.82"),
    # newborns only (age < 1)
    "V30": ("V30.00", "V30.01"),
    "765": ("765.10",),
    # women only
    "650": ("650",),
    "648": ("648.00", "648.91"),
    # men only
    "600": ("600.00", "600.01"),
    "185": ("185",),
    # 65 and over only
    "290": ("290.0",),
    "331": ("331.0",),
}
COMMON = ("401", "250", "272", "428", "486", "599", "780", "V15")
NEWBORN_ONLY = ("V30", "765")
FEMALE_ONLY = ("650", "648")
MALE_ONLY = ("600", "185")
OLD_ONLY = ("290", "331")


def category_of(code: str) -> str:
    return code[:3]


def make_hierarchy(flat: bool = False) -> Hierarchy:
    codes = [c for group in CODES.values() for c in group]
    return Hierarchy.flat(codes) if flat else Hierarchy.from_codes(codes, category_of=category_of)


@lru_cache(maxsize=8)
def make_cohort(n_patients: int = 800, seed: int = 0) -> Cohort:
    """Patients with 1-4 visits, gaps of 0.5-3 years, and categories tied to sex and age."""
    rng = np.random.default_rng(seed)
    vocab = tuple(c for group in CODES.values() for c in group)
    code_id = {c: i for i, c in enumerate(vocab)}
    sex = rng.integers(0, 2, n_patients)
    newborn = rng.random(n_patients) < 0.2
    age0 = np.where(newborn, rng.uniform(0, 0.5, n_patients), rng.uniform(1, 90, n_patients))
    n_visits = np.minimum(1 + rng.poisson(0.7, n_patients), 4)
    rows: list[int] = []
    lengths: list[int] = []
    v_sex: list[int] = []
    v_age: list[float] = []
    for p in range(n_patients):
        age = float(age0[p])
        for v in range(int(n_visits[p])):
            if v:
                age += float(rng.uniform(0.5, 3.0))
            visit: list[str] = []
            if age < 1:
                visit.append("V30.00" if rng.random() < 0.7 else "V30.01")
                if rng.random() < 0.4:
                    visit.append("765.10")
            if sex[p] == 1 and 18 <= age < 45 and rng.random() < 0.5:
                pregnancy = ["648.00", "648.91"][: rng.integers(1, 3)]
                visit += ["650"] if rng.random() < 0.5 else pregnancy
            if sex[p] == 0 and age >= 40 and rng.random() < 0.4:
                visit.append("600.00" if rng.random() < 0.6 else "185")
            if age >= 65 and rng.random() < 0.6:
                visit.append("290.0" if rng.random() < 0.5 else "331.0")
            pool = [c for cat in COMMON for c in CODES[cat]]
            k = int(rng.integers(0 if visit else 1, 6))
            visit += list(rng.choice(pool, size=k, replace=False))
            visit = list(dict.fromkeys(visit))
            rows += [code_id[c] for c in visit]
            lengths.append(len(visit))
            v_sex.append(int(sex[p]))
            v_age.append(age)
    vo = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    po = np.zeros(n_patients + 1, dtype=np.int64)
    np.cumsum(n_visits, out=po[1:])
    return Cohort(
        patient_ids=np.arange(n_patients),
        patient_offsets=po,
        visit_offsets=vo,
        codes=np.asarray(rows, dtype=np.int32),
        vocab=vocab,
        sex=np.asarray(v_sex, dtype=np.int8),
        age=np.asarray(v_age, dtype=np.float32),
    )


def empty_cohort() -> Cohort:
    return Cohort(
        patient_ids=np.zeros(0, dtype=np.int64),
        patient_offsets=np.zeros(1, dtype=np.int64),
        visit_offsets=np.zeros(1, dtype=np.int64),
        codes=np.zeros(0, dtype=np.int32),
        vocab=tuple(c for group in CODES.values() for c in group),
        sex=np.zeros(0, dtype=np.int8),
        age=np.zeros(0, dtype=np.float32),
    )


# --- generators under test ---------------------------------------------------------------
def _markov() -> Any:
    from hiergen.generators.markov import MarkovGenerator

    return MarkovGenerator()


def _markov_order1() -> Any:
    from hiergen.generators.markov import MarkovGenerator

    return MarkovGenerator(order=1, smoothing=1.0)


# Add torch generators here, e.g. a factory that calls pytest.importorskip("hiergen_torch")
# and returns a small, few-epoch model.
FACTORIES: list[Any] = [
    pytest.param(_markov, id="markov"),
    pytest.param(_markov_order1, id="markov-order1"),
]


def assert_well_formed(out: CategoryPatients, n: int, n_categories: int) -> None:
    assert isinstance(out, CategoryPatients)
    assert out.n_patients == n
    assert out.sex.dtype == np.int8 and out.sex.shape == (n,)
    assert out.age.dtype == np.float32 and out.age.shape == (n,)
    assert out.patient_offsets.dtype == np.int64 and out.patient_offsets.shape == (n + 1,)
    assert out.visit_offsets.dtype == np.int64
    assert out.categories.dtype == np.int32
    assert out.visit_age.dtype == np.float32 and out.visit_age.shape == (out.n_visits,)
    assert out.patient_offsets[0] == 0 and out.visit_offsets[0] == 0
    assert (np.diff(out.patient_offsets) >= 1).all(), "every patient has at least one visit"
    assert (np.diff(out.visit_offsets) >= 0).all()
    assert out.patient_offsets[-1] == out.visit_offsets.size - 1
    assert out.visit_offsets[-1] == out.categories.size
    if out.categories.size:
        assert out.categories.min() >= 0 and out.categories.max() < n_categories


class GeneratorContract:
    """Tests any Stage-1 generator passes; subclasses provide ``make_generator``."""

    @pytest.fixture
    def make_generator(self) -> Callable[[], Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def fitted(self, make_generator: Callable[[], Any]) -> tuple[Any, Hierarchy]:
        gen = make_generator()
        hierarchy = make_hierarchy()
        gen.fit(make_cohort(), hierarchy, seed=0)
        return gen, hierarchy

    def test_implements_protocol(self, make_generator: Callable[[], Any]) -> None:
        gen = make_generator()
        assert isinstance(gen, Stage1Generator)
        assert isinstance(type(gen).name, str) and type(gen).name

    def test_shapes_and_dtypes(self, fitted: tuple[Any, Hierarchy]) -> None:
        gen, hierarchy = fitted
        rng = np.random.default_rng(1)
        age = rng.uniform(0, 95, 300)
        sex = rng.integers(0, 2, 300)
        out = gen.sample(age, sex, seed=3)
        assert_well_formed(out, 300, hierarchy.n_categories)
        np.testing.assert_array_equal(out.sex, sex)
        np.testing.assert_allclose(out.age, age.astype(np.float32))
        first = out.patient_offsets[:-1]
        np.testing.assert_allclose(out.visit_age[first], age.astype(np.float32), rtol=1e-6)

    def test_scalar_and_string_demographics(self, fitted: tuple[Any, Hierarchy]) -> None:
        gen, hierarchy = fitted
        out = gen.sample(np.full(20, 50.0), ["F"] * 20, seed=0)
        assert_well_formed(out, 20, hierarchy.n_categories)
        assert (out.sex == 1).all()
        out = gen.sample(30.0, np.zeros(7, dtype=np.int64), seed=0)
        assert_well_formed(out, 7, hierarchy.n_categories)

    def test_zero_patients(self, fitted: tuple[Any, Hierarchy]) -> None:
        gen, hierarchy = fitted
        out = gen.sample(np.zeros(0), np.zeros(0, dtype=np.int8), seed=0)
        assert_well_formed(out, 0, hierarchy.n_categories)

    def test_same_seed_same_output(self, fitted: tuple[Any, Hierarchy]) -> None:
        gen, _ = fitted
        age = np.linspace(0, 90, 200)
        sex = np.arange(200) % 2
        a, b = gen.sample(age, sex, seed=42), gen.sample(age, sex, seed=42)
        c = gen.sample(age, sex, seed=43)
        for field in ("patient_offsets", "visit_offsets", "categories", "visit_age"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert not (
            a.categories.size == c.categories.size and (a.categories == c.categories).all()
        ), "another seed gave identical patients"

    @pytest.mark.parametrize("bad_sex", ["X", 2, -1, "unknown"])
    def test_unknown_sex(self, fitted: tuple[Any, Hierarchy], bad_sex: Any) -> None:
        gen, _ = fitted
        with pytest.raises(ValueError, match="sex"):
            sex = ["M", bad_sex] if isinstance(bad_sex, str) else [0, bad_sex]
            gen.sample([30.0, 40.0], sex, seed=0)

    @pytest.mark.parametrize("bad_age", [-1.0, float("nan"), float("inf"), 500.0])
    def test_impossible_age(self, fitted: tuple[Any, Hierarchy], bad_age: float) -> None:
        gen, _ = fitted
        with pytest.raises(ValueError, match="age"):
            gen.sample([30.0, bad_age], [0, 1], seed=0)

    def test_length_mismatch(self, fitted: tuple[Any, Hierarchy]) -> None:
        gen, _ = fitted
        with pytest.raises(ValueError, match="age|sex"):
            gen.sample([30.0, 40.0, 50.0], [0, 1], seed=0)

    def test_empty_cohort(self, make_generator: Callable[[], Any]) -> None:
        with pytest.raises(ValueError, match="empty"):
            make_generator().fit(empty_cohort(), make_hierarchy(), seed=0)

    def test_sample_before_fit(self, make_generator: Callable[[], Any]) -> None:
        with pytest.raises((HiergenError, RuntimeError, ValueError), match="fit"):
            make_generator().sample([30.0], [0], seed=0)

    def test_flat_hierarchy(self, make_generator: Callable[[], Any]) -> None:
        gen = make_generator()
        hierarchy = make_hierarchy(flat=True)
        gen.fit(make_cohort(300, seed=5), hierarchy, seed=0)
        out = gen.sample(np.linspace(0, 90, 100), np.arange(100) % 2, seed=1)
        assert_well_formed(out, 100, hierarchy.n_categories)
        for v in range(out.n_visits):  # each code its own category: never twice in a visit
            cats = out.categories[out.visit_offsets[v] : out.visit_offsets[v + 1]]
            assert np.unique(cats).size == cats.size

    def test_save_load_round_trip(self, fitted: tuple[Any, Hierarchy], tmp_path: Path) -> None:
        gen, _ = fitted
        gen.save(tmp_path / "model")
        again = type(gen).load(tmp_path / "model")
        age, sex = np.linspace(0, 90, 100), np.arange(100) % 2
        a, b = gen.sample(age, sex, seed=9), again.sample(age, sex, seed=9)
        for field in ("patient_offsets", "visit_offsets", "categories", "visit_age"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))

    def test_load_missing(self, make_generator: Callable[[], Any], tmp_path: Path) -> None:
        with pytest.raises(ModelError):
            type(make_generator()).load(tmp_path / "nothing-here")
        (tmp_path / "empty").mkdir()
        with pytest.raises(ModelError):
            type(make_generator()).load(tmp_path / "empty")

    def test_load_corrupt(self, fitted: tuple[Any, Hierarchy], tmp_path: Path) -> None:
        gen, _ = fitted
        gen.save(tmp_path / "m")
        files = sorted(p for p in (tmp_path / "m").iterdir() if p.suffix != ".json")
        assert files, "no tensor file written"
        data = bytearray(files[0].read_bytes())
        data[len(data) // 2] ^= 0xFF
        files[0].write_bytes(bytes(data))
        with pytest.raises(ModelError):
            type(gen).load(tmp_path / "m")


@pytest.mark.parametrize("factory", FACTORIES)
class TestContract(GeneratorContract):
    @pytest.fixture
    def make_generator(self, factory: Callable[[], Any]) -> Callable[[], Any]:
        return factory
