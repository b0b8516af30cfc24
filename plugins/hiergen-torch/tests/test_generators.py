"""The lstm and transformer generators: training, conditioning, determinism, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch_testdata import TINY, category, make_cohort

from hiergen import Cohort, DataError, Hierarchy, ModelError
from hiergen.generators import CategoryPatients, Stage1Generator
from hiergen_torch import LSTMGenerator, TransformerGenerator


def _visits(p: CategoryPatients, h: Hierarchy) -> list[list[str]]:
    return [[h.categories[c] for c in p.categories[a:b]]
            for a, b in zip(p.visit_offsets[:-1], p.visit_offsets[1:], strict=True)]


def test_protocol_and_plugin_registration() -> None:
    from hiergen_torch.plugin import hiergen_generators

    specs = {s.name: s.load() for s in hiergen_generators()}
    assert specs == {"lstm": LSTMGenerator, "transformer": TransformerGenerator}
    assert isinstance(TransformerGenerator(), Stage1Generator)


def test_entry_point_is_installed() -> None:
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="hiergen")}
    assert "hiergen_torch.plugin" in names


def test_learns_and_samples_varied_patients(fitted, cohort: Cohort, hierarchy: Hierarchy
                                            ) -> None:
    assert fitted.history[-1]["val_nll"] < fitted.history[0]["val_nll"]
    n = 400
    out = fitted.sample(np.full(n, 60.0), np.arange(n) % 2, seed=1)
    assert out.n_patients == n
    assert (np.diff(out.patient_offsets) >= 1).all()  # nobody without a visit
    lens = np.diff(out.visit_offsets)
    assert lens.min() >= 1
    real_lens = cohort.visit_lengths
    # Not collapsed: many distinct categories and visit sizes near the data's.
    assert np.unique(out.categories).size >= 10
    assert abs(lens.mean() - real_lens.mean()) < 0.2 * real_lens.mean()
    assert np.unique(lens).size >= 3
    # Valid multisets: a category repeats at most as often as it has codes.
    sizes = np.diff(hierarchy.offsets)
    for visit in _visits(out, hierarchy):
        for cat in set(visit):
            assert visit.count(cat) <= sizes[hierarchy.category_id(cat)]


def test_conditioning_on_sex_and_age(fitted, hierarchy: Hierarchy) -> None:
    n = 300
    women = fitted.sample(np.full(n, 30.0), np.ones(n, dtype=int), seed=2)
    men = fitted.sample(np.full(n, 60.0), np.zeros(n, dtype=int), seed=2)
    f_cat, m_cat = hierarchy.category_id("650"), hierarchy.category_id("600")
    share = {
        "650 in women": np.isin(f_cat, women.categories) and np.mean(women.categories == f_cat),
        "650 in men": np.mean(men.categories == f_cat),
        "600 in men": np.mean(men.categories == m_cat),
        "600 in women": np.mean(women.categories == m_cat),
    }
    assert share["650 in women"] > 0.1 and share["600 in men"] > 0.1, share
    assert share["650 in men"] < 0.01 and share["600 in women"] < 0.01, share
    babies = fitted.sample(np.zeros(n), np.arange(n) % 2, seed=3)
    v30 = hierarchy.category_id("V30")
    assert np.mean(babies.categories == v30) > 0.5
    assert np.mean(men.categories == v30) < 0.02


def test_same_seed_same_patients(fitted) -> None:
    age, sex = np.linspace(0, 90, 50), np.arange(50) % 2
    a, b = fitted.sample(age, sex, seed=7), fitted.sample(age, sex, seed=7)
    c = fitted.sample(age, sex, seed=8)
    for field in ("patient_offsets", "visit_offsets", "categories"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.categories, c.categories) or not np.array_equal(
        a.visit_offsets, c.visit_offsets)


def test_save_load_roundtrip(fitted, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    loaded = type(fitted).load(tmp_path / "m", progress=False)
    age, sex = np.linspace(0, 90, 40), ["M", "F"] * 20
    a, b = fitted.sample(age, sex, seed=5), loaded.sample(age, sex, seed=5)
    assert np.array_equal(a.categories, b.categories)
    assert np.array_equal(a.visit_offsets, b.visit_offsets)
    assert loaded.hierarchy.categories == fitted.hierarchy.categories
    assert loaded.summary["n_patients"] == fitted.summary["n_patients"]
    header = json.loads((tmp_path / "m" / "config.json").read_text())
    assert header["kind"] == fitted.name and "vocab" in header["config"]


def test_corrupt_and_foreign_checkpoints(fitted, tmp_path: Path) -> None:
    path = tmp_path / "m"
    fitted.save(path)
    other = LSTMGenerator if fitted.name == "transformer" else TransformerGenerator
    with pytest.raises(ModelError, match="checkpoint"):
        other.load(path)
    weights = path / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-10:] = b"\x00" * 10
    weights.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="corrupt"):
        type(fitted).load(path)
    fitted.save(path)
    config = path / "config.json"
    header = json.loads(config.read_text())
    header["config"]["model_version"] = 99
    config.write_text(json.dumps(header))
    with pytest.raises(ModelError, match="model_version"):
        type(fitted).load(path)
    config.write_text("{not json")
    with pytest.raises(ModelError, match="corrupt JSON"):
        type(fitted).load(path)
    with pytest.raises(ModelError, match="does not exist"):
        type(fitted).load(tmp_path / "nowhere")


def test_bad_sampling_input(fitted) -> None:
    with pytest.raises(ValueError, match="sex"):
        fitted.sample([30.0], ["X"], seed=0)
    with pytest.raises(ValueError, match="sex"):
        fitted.sample([30.0], [2], seed=0)
    with pytest.raises(ValueError, match="age"):
        fitted.sample([-1.0], [0], seed=0)
    with pytest.raises(ValueError, match="age"):
        fitted.sample([float("nan")], [0], seed=0)
    with pytest.raises(ModelError, match="not trained"):
        type(fitted)().sample([30.0], [0], seed=0)


def test_bad_training_input(hierarchy: Hierarchy) -> None:
    cohort = make_cohort(5)
    empty = cohort.select_patients(np.zeros(0, dtype=np.int64))
    with pytest.raises(DataError, match="empty"):
        TransformerGenerator(progress=False).fit(empty, hierarchy)
    one = make_cohort(30)
    only = np.flatnonzero(np.isin(one.codes, [one.vocab.index("V30.00")]))
    visits = np.unique(np.searchsorted(one.visit_offsets, only, side="right") - 1)
    single = one.select_visits(visits)
    h = Hierarchy.from_codes(single.vocab, category_of=category)
    with pytest.raises(DataError, match="one category"):
        LSTMGenerator(progress=False).fit(single, h)
    with pytest.raises(TypeError, match="unknown option"):
        TransformerGenerator(d_modle=3)
    with pytest.raises(ValueError, match="top_p"):
        TransformerGenerator(top_p=0.0)
    with pytest.raises(ValueError, match="temperature: expected a number, got 'warm'"):
        TransformerGenerator(temperature="warm")  # e.g. -p temperature=warm at training


@pytest.mark.parametrize("options", [{"top_k": 3}, {"top_p": 0.7}, {"temperature": 0.5},
                                     {"temperature": 0.0}])
def test_sampling_options(options: dict[str, float], cohort: Cohort, hierarchy: Hierarchy
                          ) -> None:
    gen = TransformerGenerator(progress=False, **{**TINY, "epochs": 2, **options})
    gen.fit(cohort, hierarchy, seed=0)
    out = gen.sample(np.full(64, 50.0), np.arange(64) % 2, seed=0)
    assert out.n_patients == 64 and (np.diff(out.visit_offsets) >= 1).all()
    if options.get("temperature") == 0.0:  # greedy: identical requests, identical patients
        rows = _visits(out, hierarchy)
        per_patient = [tuple(map(tuple, rows[a:b])) for a, b in
                       zip(out.patient_offsets[:-2:2], out.patient_offsets[1:-1:2], strict=True)]
        assert len(set(per_patient)) == 1


def test_length_batches_cover_each_patient_once_with_little_padding() -> None:
    from hiergen_torch.generator import POOL_BATCHES, _length_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 17, 5000)
    index = rng.permutation(4000)
    batches = _length_batches(lengths, index, 32, np.random.default_rng(1))
    assert np.array_equal(np.sort(np.concatenate(batches)), np.sort(index))
    assert max(b.size for b in batches) == 32
    # within a pool sorted by length: padding far below random batches' (about 2x tokens)
    padded = sum(b.size * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths[index].sum()
    # shuffled: not all in length order
    firsts = [lengths[b].min() for b in batches[:POOL_BATCHES]]
    assert firsts != sorted(firsts)
    evaluation = _length_batches(lengths, index, 100, None)
    assert np.array_equal(np.concatenate(evaluation), index[np.argsort(lengths[index],
                                                                       kind="stable")])
    assert _length_batches(lengths, np.zeros(0, dtype=np.int64), 8, None) == []


def test_time_budget_and_log_likelihood(cohort: Cohort, hierarchy: Hierarchy) -> None:
    gen = LSTMGenerator(progress=False, **{**TINY, "batch_size": 16, "max_seconds": 1e-6})
    gen.fit(cohort, hierarchy, seed=0)
    assert len(gen.history) == 1 and 0 < gen.history[0]["epoch"] < 1  # one batch, then stop
    total, n = gen.log_likelihood(cohort)
    assert n == cohort.n_rows + cohort.n_visits  # category tokens + one marker per visit
    assert gen.nll(cohort) == pytest.approx(total / n)
    assert gen.n_unknown_rows(cohort) == 0
    with pytest.raises(ValueError, match="max_seconds"):
        LSTMGenerator(progress=False, max_seconds=-1.0).fit(cohort, hierarchy)


def test_version_1_checkpoints_load_for_the_transformer_only(fitted, tmp_path: Path) -> None:
    # Version 2 changed the LSTM's layers; a version-1 transformer checkpoint still reads.
    fitted.save(tmp_path)
    header_path = tmp_path / "config.json"
    header = json.loads(header_path.read_text())
    header["config"]["model_version"] = 1
    header_path.write_text(json.dumps(header))
    if fitted.name == "transformer":
        assert type(fitted).load(tmp_path, progress=False).name == "transformer"
    else:
        with pytest.raises(ModelError, match="retrain"):
            type(fitted).load(tmp_path, progress=False)
