"""Output writers: MEDS (checked with the meds package's schemas), flat Parquet and CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model_helpers import train_small_model, tree_digest

from hiergen.generation.patients import GeneratedPatients
from hiergen.model import HiergenModel
from hiergen.writers import get_writer_spec, make_writer
from hiergen.writers.meds import BIRTH_CODE, MedsWriter


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> HiergenModel:
    return HiergenModel.load(train_small_model(tmp_path_factory.mktemp("wmodel") / "m"))


@pytest.fixture(scope="module")
def batch(model: HiergenModel) -> GeneratedPatients:
    return model.generate_shard(3, 1500, 500, seed=4)


def test_builtin_writers_are_registered() -> None:
    for name in ("meds", "parquet", "csv"):
        assert get_writer_spec(name).name == name


def test_meds_rows_per_subject(model: HiergenModel, batch: GeneratedPatients) -> None:
    table = MedsWriter("unused", model=model).table(batch)
    assert table.num_rows == batch.n_rows + 2 * batch.n_patients
    sid = table.column("subject_id").to_numpy()
    assert sid[0] == 1500 and sid[-1] == 1999
    assert (np.diff(sid) >= 0).all()
    codes = table.column("code").to_pylist()
    times = table.column("time").cast(pa.int64()).to_pylist()
    starts = np.flatnonzero(np.r_[True, np.diff(sid) != 0])
    assert starts.size == batch.n_patients
    for p, s in enumerate(starts[:50]):
        assert codes[s] == ("GENDER//M", "GENDER//F")[int(batch.stage1.sex[p])]
        assert times[s] is None
        assert codes[s + 1] == BIRTH_CODE
        end = starts[p + 1] if p + 1 < starts.size else len(codes)
        subject_times = times[s + 1 : end]
        assert subject_times == sorted(subject_times)
        expected = [f"ICD9CM/{c}" for visit in batch.codes_of(p) for c in visit]
        assert codes[s + 2 : end] == expected
        # Birth is the age at the first visit earlier, to the day.
        days = (subject_times[1] - subject_times[0]) / 86_400e6
        assert abs(days / 365.25 - float(batch.stage1.age[p])) < 1.5 / 365.25


def test_meds_files_follow_the_meds_schema(
    model: HiergenModel, batch: GeneratedPatients, tmp_path: Path
) -> None:
    meds = pytest.importorskip("meds", reason="the meds package is not installed")
    writer = MedsWriter(tmp_path, model=model, code_prefix="ICD9/")
    files = writer.write_shard(0, batch)
    writer.finalize({"job": {"n": 500, "seed": 4, "model_hash": model.content_hash}})
    data = pq.read_table(tmp_path / files[0].path)
    meds.DataSchema.validate(data)
    assert any(c.startswith("ICD9/") for c in data.column("code").to_pylist())
    codes = pq.read_table(tmp_path / "metadata" / "codes.parquet")
    meds.CodeMetadataSchema.validate(codes)
    assert set(data.column("code").to_pylist()) <= set(codes.column("code").to_pylist())
    dataset = json.loads((tmp_path / "metadata" / "dataset.json").read_text())
    meds.DatasetMetadataSchema.validate(dataset)
    assert dataset["etl_name"] == "hiergen"
    # The check is real: a table without the code column is refused.
    with pytest.raises(Exception):  # noqa: B017 - the meds package's own exception types
        meds.DataSchema.validate(data.drop_columns(["code"]))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_flat_table_round_trip(
    fmt: str, model: HiergenModel, batch: GeneratedPatients, tmp_path: Path
) -> None:
    writer = make_writer(fmt, tmp_path, model=model)
    (written,) = writer.write_shard(7, batch)
    path = tmp_path / written.path
    assert path.name == f"part-00007.{fmt}"
    table = pq.read_table(path) if fmt == "parquet" else pacsv.read_csv(path)
    assert table.column_names == ["patient_id", "visit_index", "age", "sex", "category", "code"]
    assert table.num_rows == batch.n_rows
    expected = batch.to_arrow()
    assert table.column("patient_id").to_pylist() == expected.column("patient_id").to_pylist()
    assert table.column("code").cast(pa.string()).to_pylist() == [
        str(c) for c in expected.column("code").to_pylist()
    ]
    assert set(table.column("sex").cast(pa.string()).to_pylist()) <= {"M", "F"}
    assert written.bytes == path.stat().st_size
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left


@pytest.mark.parametrize("fmt", ["meds", "parquet", "csv"])
def test_writing_is_byte_deterministic(
    fmt: str, model: HiergenModel, batch: GeneratedPatients, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        writer = make_writer(fmt, tmp_path / name, model=model)
        writer.write_shard(0, batch)
        writer.finalize({"job": {"n": 1, "seed": 0, "model_hash": "x"}})
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def _random_batch(data: st.DataObject) -> GeneratedPatients:
    from hiergen.generators.base import CategoryPatients
    from hiergen.hierarchy import Hierarchy

    hierarchy = Hierarchy.from_codes(["401.1", "401.9", "250.00", "V30.00", "E888.9"])
    n = data.draw(st.integers(1, 12))
    visits = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    po = np.r_[0, np.cumsum(visits)].astype(np.int64)
    nv = int(po[-1])
    lengths = np.asarray(data.draw(st.lists(st.integers(0, 4), min_size=nv, max_size=nv)),
                         dtype=np.int64)
    vo = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    codes = np.asarray(
        data.draw(st.lists(st.integers(0, hierarchy.n_codes - 1), min_size=int(vo[-1]),
                           max_size=int(vo[-1]))), dtype=np.int32)
    ages = np.asarray(data.draw(st.lists(st.floats(0, 100), min_size=n, max_size=n)))
    gaps = np.asarray(data.draw(st.lists(st.floats(0, 5), min_size=nv, max_size=nv)))
    visit_age = (np.repeat(ages, visits) + gaps).astype(np.float32)
    stage1 = CategoryPatients(
        sex=np.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
                       dtype=np.int8),
        age=ages.astype(np.float32), patient_offsets=po, visit_offsets=vo,
        categories=hierarchy.code_category[codes], visit_age=visit_age,
    )
    return GeneratedPatients(data.draw(st.integers(0, 10**9)), stage1, codes, hierarchy)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_meds_table_invariants(data: st.DataObject) -> None:
    batch = _random_batch(data)
    table = MedsWriter("unused").table(batch)
    sid = table.column("subject_id").to_numpy()
    assert table.num_rows == batch.n_rows + 2 * batch.n_patients
    assert np.array_equal(np.unique(sid), batch.patient_ids)
    assert (np.diff(sid) >= 0).all()  # contiguous subjects
    times = table.column("time").cast(pa.int64()).to_pylist()
    codes = table.column("code").to_pylist()
    for pid in batch.patient_ids.tolist():
        rows = np.flatnonzero(sid == pid)
        assert times[rows[0]] is None and codes[rows[0]].startswith("GENDER//")
        assert codes[rows[1]] == BIRTH_CODE
        rest = [times[r] for r in rows[1:]]
        assert None not in rest and rest == sorted(rest)
    assert table.column("code").null_count == 0
