"""The model bundle: train -> save -> load, reproducible generation, the default model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_model_helpers import VOCAB, small_cohort, train_small_model

from hiergen.demographics import N_STRATA
from hiergen.errors import ModelError
from hiergen.generation.demographics import DemographicsDistribution, parse_age_range
from hiergen.model import (
    FORMAT_VERSION,
    MODEL_FILE,
    HiergenModel,
    default_model_dir,
    directory_hash,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("model") / "m", weighting="stratified")


@pytest.fixture(scope="module")
def model(model_dir: Path) -> HiergenModel:
    return HiergenModel.load(model_dir)


def test_model_directory_layout(model_dir: Path, model: HiergenModel) -> None:
    assert (model_dir / MODEL_FILE).is_file()
    assert (model_dir / "stage2.safetensors").is_file()
    assert any((model_dir / "stage1").iterdir())
    config = json.loads((model_dir / MODEL_FILE).read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["generator"]["name"] == "markov"
    assert config["weighting"]["name"] == "stratified"
    assert config["weighting"]["strata"] == N_STRATA
    summary = config["training_summary"]
    cohort = small_cohort()
    assert summary["patients"] == cohort.n_patients
    assert summary["visits"] == cohort.n_visits
    assert summary["diagnosis_rows"] == cohort.n_rows
    # Counts only: the demographics histogram sums to the number of patients.
    assert sum(map(sum, config["demographics"]["counts"])) == cohort.n_patients
    assert set(model.hierarchy.codes) == set(VOCAB)
    assert model.content_hash == directory_hash(model_dir)


def test_same_seed_same_patients_other_seed_differs(model: HiergenModel) -> None:
    a = model.generate(n=500, seed=11)
    b = model.generate(n=500, seed=11)
    c = model.generate(n=500, seed=12)
    assert a.to_arrow().equals(b.to_arrow())
    assert not a.to_arrow().equals(c.to_arrow())


def test_design_page_call_one_patient(model: HiergenModel) -> None:
    out = model.generate(x_num=[65.0], x_cat=[0], seed=3)
    assert out.n_patients == 1
    assert out.stage1.sex.tolist() == [0]
    assert out.stage1.age.tolist() == [65.0]
    visits = out.codes_of(0)
    assert visits and all(code in VOCAB for visit in visits for code in visit)
    cats = out.categories_of(0)
    assert [len(v) for v in cats] == [len(v) for v in visits]
    for cv, kv in zip(cats, visits, strict=True):
        for cat, code in zip(cv, kv, strict=True):
            assert code.startswith(cat)


def test_codes_belong_to_their_categories_and_are_distinct(model: HiergenModel) -> None:
    out = model.generate(n=2000, seed=5)
    h = model.hierarchy
    assert np.array_equal(h.code_category[out.codes], out.stage1.categories)
    cohort = out.to_cohort()  # validates the CSR arrays
    for v in range(0, cohort.n_visits, 97):
        row = cohort.codes[cohort.visit_offsets[v] : cohort.visit_offsets[v + 1]]
        assert len(set(row.tolist())) == row.size


def test_batches_equal_shards_and_concatenate(model: HiergenModel) -> None:
    batches = list(model.generate_batches(1000, seed=9, batch_size=300))
    assert [b.n_patients for b in batches] == [300, 300, 300, 100]
    assert [b.first_id for b in batches] == [0, 300, 600, 900]
    shard2 = model.generate_shard(2, 600, 300, seed=9)
    assert batches[2].to_arrow().equals(shard2.to_arrow())
    tables = list(model.generate_batches(1000, seed=9, batch_size=300, as_arrow=True))
    assert all(isinstance(t, pa.Table) for t in tables)
    assert tables[3].column("patient_id").to_pylist()[0] == 900


def test_explicit_demographics_are_kept(model: HiergenModel) -> None:
    ages = np.array([0.2, 30.0, 70.5, 89.0], dtype=np.float32)
    out = model.generate(age=ages, sex=["F", "M", "F", "M"], seed=1)
    assert out.stage1.age.tolist() == ages.tolist()
    assert out.stage1.sex.tolist() == [1, 0, 1, 0]
    broadcast = model.generate(age=50.0, sex=1, n=7, seed=1)
    assert broadcast.n_patients == 7 and set(broadcast.stage1.sex.tolist()) == {1}


def test_restricted_sampling(model: HiergenModel) -> None:
    age, sex = model.sample_demographics(5000, seed=2, sex="F", age_range=(40, 60))
    assert (sex == 1).all()
    assert age.min() >= 40.0 and age.max() < 61.0
    out = model.generate(n=300, sex="M", age_range=(0, 0), seed=4)
    assert (out.stage1.sex == 0).all() and (out.stage1.age < 1.0).all()


def test_demographics_histogram_sampling_matches_counts() -> None:
    rng = np.random.default_rng(0)
    dist = DemographicsDistribution.from_arrays([10.5] * 300 + [70.2] * 100, [0] * 300 + [1] * 100)
    age, sex = dist.sample(40_000, rng)
    share_f = float((sex == 1).mean())
    # binomial standard error with n = 40,000 is 0.0022; allow 5 of them
    assert abs(share_f - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 40_000)
    assert set(np.floor(age).astype(int).tolist()) == {10, 70}


def test_sampling_options_need_a_generator_that_takes_them(model: HiergenModel,
                                                           tmp_path: Path) -> None:
    model.set_sampling_options()  # nothing asked, nothing to refuse
    with pytest.raises(ValueError, match="generator 'markov' takes none, got quantize, top_p"):
        model.set_sampling_options(top_p=0.9, quantize="int8")
    from hiergen.generation.job import run_job

    with pytest.raises(ValueError, match="takes none"):
        run_job(tmp_path / "out", n=10, model=model, sampling_options={"top_k": 1})
    assert not (tmp_path / "out").exists()


def test_parse_age_range() -> None:
    assert parse_age_range("40-60") == (40, 60)
    assert parse_age_range("65") == (65, 65)
    for bad in ("60-40", "x", "1-2-3", "-5"):
        with pytest.raises(ValueError, match="age-range"):
            parse_age_range(bad)


def test_load_errors_name_the_file(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ModelError, match="model.json"):
        HiergenModel.load(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / MODEL_FILE).write_text(json.dumps({"format": "hiergen-model", "format_version": 99}))
    with pytest.raises(ModelError, match="format_version 99"):
        HiergenModel.load(bad)


def test_save_refuses_non_empty_directory(model: HiergenModel, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ModelError, match="not empty"):
        model.save(tmp_path)
    copy = tmp_path / "copy"
    model.save(copy)
    assert directory_hash(copy) == directory_hash(model.directory)  # deterministic bytes


def test_default_model_ships_and_generates() -> None:
    root = default_model_dir()
    if not (root / MODEL_FILE).is_file():
        pytest.skip("default model not trained in this checkout")
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 10_000_000, f"default model is {size / 1e6:.1f} MB"
    model = HiergenModel.load()
    assert model.summary["patients"] == 151_551  # NHDS 2010
    out = model.generate(n=2000, seed=0)
    distinct = np.unique(out.codes).size
    assert distinct > 300, f"only {distinct} distinct codes in 2,000 patients (mode collapse?)"


def test_hash_ignores_safetensors_metadata_order(model: HiergenModel, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    a, b = tmp_path / "a", tmp_path / "b"
    for d, meta in ((a, {"x": "1", "y": "2"}), (b, {"y": "2", "x": "1"})):
        d.mkdir()
        save_file({"w": np.arange(3.0)}, str(d / "t.safetensors"), metadata=meta)
    assert directory_hash(a) == directory_hash(b)
    save_file({"w": np.arange(4.0)}, str(b / "t.safetensors"))
    assert directory_hash(a) != directory_hash(b)


def test_default_model_is_conditioned_on_sex() -> None:
    """Pregnancy codes (630-679) in about 3 of 4 visits of women aged 20-40 in NHDS, in
    none of men's; the default model must keep that split."""
    if not (default_model_dir() / MODEL_FILE).is_file():
        pytest.skip("default model not trained in this checkout")
    model = HiergenModel.load()
    cats = np.asarray(model.hierarchy.categories)
    pregnancy = np.array([c.isdigit() and 630 <= int(c) <= 679 for c in cats])
    share = {}
    for sex in ("M", "F"):
        out = model.generate(n=2000, sex=sex, age_range=(20, 40), seed=1)
        cum = np.r_[0, np.cumsum(pregnancy[out.stage1.categories])]
        vo = out.stage1.visit_offsets
        per_visit = (cum[vo[1:]] - cum[vo[:-1]]) > 0
        share[sex] = float(per_visit.mean())
    assert share["M"] < 0.005
    assert share["F"] > 0.3


# --- context-aware Stage 2 in the bundle (issue 8) --------------------------------------


def _write_flat_table(path: Path, n_patients: int = 300) -> None:
    cohort = small_cohort(n_patients)
    lines = ["patient_id,visit_id,code,age,sex"]
    vp = cohort.visit_patient
    for v in range(cohort.n_visits):
        sex = "MF"[int(cohort.sex[v])]
        for c in cohort.codes[cohort.visit_offsets[v] : cohort.visit_offsets[v + 1]]:
            lines.append(f"p{int(vp[v])},v{v},{cohort.vocab[int(c)]},"
                         f"{float(cohort.age[v]):.2f},{sex}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def context_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained through ``hiergen train`` with its default weighting, ``context``."""
    from click.testing import CliRunner

    from hiergen.cli.main import cli

    root = tmp_path_factory.mktemp("ctx")
    _write_flat_table(root / "table.csv")
    result = CliRunner().invoke(
        cli,
        ["train", str(root / "table.csv"), "--format", "table", "--generator", "markov",
         "--weighting-param", "min_support=5", "-p", "order=1",
         "-o", str(root / "model")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return root / "model"


def test_context_model_stores_compact_tables(context_model_dir: Path) -> None:
    from hiergen.model import CONTEXT_STEM

    config = json.loads((context_model_dir / MODEL_FILE).read_text())
    assert config["weighting"]["name"] == "context"
    assert config["weighting"]["context"]["stem"] == CONTEXT_STEM
    model = HiergenModel.load(context_model_dir)
    assert model.context is not None and model.context.n_tables > 0
    assert config["weighting"]["context"]["tables"] == model.context.n_tables
    stored = context_model_dir / f"{CONTEXT_STEM}.safetensors"
    # float16 weights and narrow ids: well under the float64 arrays' bytes.
    assert stored.stat().st_size < 0.5 * model.context.nbytes
    # Each loaded table is a distribution again.
    sums = np.add.reduceat(model.context.weights, model.context.table_offsets[:-1])
    assert np.allclose(sums, 1.0)


def test_context_model_draws_with_the_context_index(context_model_dir: Path) -> None:
    model = HiergenModel.load(context_model_dir)
    out = model.generate(n=3000, seed=4)
    st1 = out.stage1
    from hiergen.demographics import stratum

    strata = stratum(st1.visit_sex, st1.visit_age).astype(np.int32)
    cats = np.ascontiguousarray(st1.categories, dtype=np.int32)
    vo = np.ascontiguousarray(st1.visit_offsets, dtype=np.int64)
    from hiergen.generation.seeds import ShardSeeds

    seed2 = ShardSeeds.of(4, 0).stage2
    ctx = model.context_index.sample_visits(cats, vo, strata, seed=seed2)
    free = model.index.sample_visits(cats, vo, strata, seed=seed2)
    assert np.array_equal(out.codes, ctx)
    assert not np.array_equal(out.codes, free)
    h = model.hierarchy
    assert np.array_equal(h.code_category[out.codes], st1.categories)
    for v in range(st1.visit_offsets.size - 1):
        visit = out.codes[st1.visit_offsets[v] : st1.visit_offsets[v + 1]]
        assert np.unique(visit).size == visit.size


def test_context_model_same_before_and_after_saving(tmp_path: Path) -> None:
    from hiergen.train import train

    trained = train(small_cohort(), tmp_path / "m", generator="markov", weighting="context",
                    generator_params={"order": 1}, weighting_params={"min_support": 5})
    loaded = HiergenModel.load(tmp_path / "m")
    assert trained.to_config()["weighting"] == loaded.to_config()["weighting"]
    assert trained.generate(n=800, seed=9).to_arrow().equals(
        loaded.generate(n=800, seed=9).to_arrow())


def test_context_model_generates_through_the_cli_whatever_the_workers(
    context_model_dir: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner
    from test_model_helpers import tree_digest

    from hiergen.cli.main import cli

    digests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = CliRunner().invoke(
            cli,
            ["generate", str(context_model_dir), "-n", "900", "-o", str(out), "--format",
             "parquet", "--seed", "5", "--shard-size", "300", "--workers", str(workers),
             "--no-progress"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert result.output.startswith("900 patients,")
        digests.append(tree_digest(out))
    assert digests[0] == digests[1]


def test_context_tables_must_match_the_hierarchy(context_model_dir: Path) -> None:
    model = HiergenModel.load(context_model_dir)
    from hiergen.hierarchy import Hierarchy

    other = Hierarchy.from_codes(["401.9", "250.00"])
    with pytest.raises(ModelError, match="context tables: built for"):
        HiergenModel(model.generator, "markov", other, np.ones((1, 2)), context=model.context)
