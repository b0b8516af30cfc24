"""Loaders on hand-written fixtures of every format, bad input, strict mode, and real data."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from hiergen.errors import DataError, PluginError
from hiergen.loaders import LOADERS, load

FIX = Path(__file__).parent / "fixtures"


def _codes(cohort, visit: int) -> list[str]:  # type: ignore[no-untyped-def]
    vo = cohort.visit_offsets
    return [cohort.vocab[i] for i in cohort.codes[vo[visit] : vo[visit + 1]]]


def test_nhds_fixture() -> None:
    c, r = load(FIX / "nhds" / "sample.txt", format="nhds")
    assert (r.rows_read, r.rows_kept, c.n_patients, c.n_visits) == (12, 9, 4, 4)
    assert r.dropped == {"malformed code": 1, "non-numeric age": 1,
                         "duplicate code in a visit": 1, "empty visit": 1}
    assert "sample.txt line 4, diagnosis 2" in r.examples["malformed code"][0]
    assert _codes(c, 0) == ["401.9", "250.00", "280.9", "V15.82", "E888.9"]  # source order
    np.testing.assert_allclose(c.age, [64.0, 0.0, 0.5, 45.0])  # newborn -> 0, 6 months -> 0.5
    assert c.sex.tolist() == [1, 0, 1, 0]
    assert c.time is None


def test_nhds_bz2_and_bad_record_length(tmp_path: Path) -> None:
    import bz2

    raw = (FIX / "nhds" / "sample.txt").read_bytes()
    p = tmp_path / "x.txt.bz2"
    p.write_bytes(bz2.compress(raw))
    assert load(p, format="nhds")[0].n_visits == 4
    bad = tmp_path / "bad.txt"
    bad.write_bytes(raw[:151] + b"short line\r\n")
    with pytest.raises(DataError, match=r"bad.txt line 2 .*149"):
        load(bad, format="nhds")


def test_mimic3_fixture() -> None:
    c, r = load(FIX / "mimic3", format="mimic3")
    assert c.patient_ids.tolist() == [1, 2, 3]
    assert c.visits_per_patient.tolist() == [2, 1, 1]
    # visits ordered by admission time (hadm 100 before 101), codes by SEQ_NUM
    assert _codes(c, 0) == ["401.9", "038.9", "V15.82"]
    assert _codes(c, 1) == ["E888.9", "276.5", "401.9"]
    assert r.dropped == {"missing code": 1, "malformed code": 1,
                         "duplicate code in a visit": 1, "empty visit": 1}
    assert "hadm_id=301" in r.examples["empty visit"][0]
    assert c.age[2] == 90.0  # shifted ~300-year age
    assert abs(c.age[0] - 50.0) < 0.01
    assert c.time is not None and c.time[0] < c.time[1]


def test_mimic4_fixture_drops_icd10_rows() -> None:
    c, r = load(FIX / "mimic4", format="mimic4")
    assert r.dropped["ICD-10 code"] == 2
    assert r.dropped["empty visit"] == 1  # an admission with only ICD-10 codes
    assert c.patient_ids.tolist() == [10, 12]
    np.testing.assert_allclose(c.age, [50.0, 52.0, 90.0])
    assert _codes(c, 0) == ["401.9", "250.00"]


def test_meds_fixture_by_time_and_by_admission() -> None:
    for opts in ({}, {"visit_column": "hadm_id"}):
        c, r = load(FIX / "meds", format="meds", **opts)
        assert c.n_patients == 2 and c.n_visits == 3
        assert r.dropped["ICD-10 code"] == 1 and r.dropped["malformed code"] == 1
        assert r.dropped["missing sex"] == 1
        assert r.ignored["codes that are not ICD9CM/ or ICD10CM/ diagnoses"] == 1
        assert _codes(c, 0) == ["401.9", "250.00"]
        assert c.sex.tolist() == [1, 1, 0]
        assert abs(c.age[0] - 60.0) < 0.01


def test_table_fixture_csv_sniffed_delimiter_and_parquet(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    for name in ("long.csv", "semicolon.csv"):
        c, r = load(FIX / "table" / name, format="table")
        assert c.patient_ids.tolist() == ["p1", "p2"]
        assert _codes(c, 0) == ["401.9", "250.00"] and _codes(c, 1) == ["401.9"]
        assert r.dropped["unknown sex value"] == 1 and r.dropped["non-numeric age"] == 1
        assert r.dropped["ICD-10 code"] == 1 and r.dropped["malformed code"] == 1
    pq.write_table(pacsv.read_csv(FIX / "table" / "long.csv"), tmp_path / "t.parquet")
    c2, _ = load(tmp_path / "t.parquet", format="table")
    assert c2.n_rows == 4


def test_table_custom_columns_and_time_visits(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("pid,when,dx,years,gender\na,2020-01-02,4019,50,female\na,2020-01-02,25000,50,"
                 "female\na,2019-05-01,486,49,female\n")
    c, r = load(p, format="table", patient="pid", visit=None, time="when", code="dx",
                age="years", sex="gender")
    assert c.n_visits == 2 and _codes(c, 0) == ["486"]  # ordered by time
    assert not r.dropped


def test_synpuf_fixture() -> None:
    c, r = load(FIX / "synpuf", format="synpuf")
    assert not r.dropped and c.n_visits == 3
    assert _codes(c, 0) == ["486", "428.0"]  # 2008 claim first
    assert c.sex.tolist() == [0, 0, 1]
    c2, _ = load(FIX / "synpuf", format="synpuf", admitting=True)
    assert "786.5" in c2.vocab


def test_strict_mode_raises_on_any_drop() -> None:
    with pytest.raises(DataError, match=r"strict mode.*DIAGNOSES_ICD.csv line"):
        load(FIX / "mimic3", format="mimic3", strict=True)
    c, r = load(FIX / "synpuf", format="synpuf", strict=True)
    assert c.n_rows == r.rows_kept


def test_report_summary_names_reasons() -> None:
    _, r = load(FIX / "table" / "long.csv", format="table")
    s = r.summary()
    assert "read 8 rows, kept 4" in s and "unknown sex value" in s and "long.csv line 8" in s
    assert r.to_dict()["dropped"] == r.dropped


# --- bad input ----------------------------------------------------------------------------
def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope.csv", format="table")
    with pytest.raises(DataError, match="DIAGNOSES_ICD"):
        load(tmp_path, format="mimic3")


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("patient_id,visit_id,code,age\n1,1,4019,3\n")
    with pytest.raises(DataError, match=r"t.csv lacks column\(s\) sex"):
        load(p, format="table")


def test_wrong_delimiter_is_named(tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(FIX / "mimic3", d)
    text = (d / "PATIENTS.csv").read_text().replace(",", ";")
    (d / "PATIENTS.csv").write_text(text)
    with pytest.raises(DataError, match=r"PATIENTS.csv lacks column.*';'-delimited"):
        load(d, format="mimic3")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        load(FIX / "table" / "empty.csv", format="table")
    p = tmp_path / "h.csv"
    p.write_text("patient_id,visit_id,code,age,sex\n")
    with pytest.raises(DataError, match="no rows"):
        load(p, format="table")
    e = tmp_path / "e.txt"
    e.write_text("")
    with pytest.raises(DataError, match="empty"):
        load(e, format="nhds")


def test_wholly_non_numeric_age_or_unknown_sex_column_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("patient_id,visit_id,code,age,sex\n1,1,4019,old,M\n2,1,4019,young,F\n")
    with pytest.raises(DataError, match=r"column 'age' holds no numeric ages.*line 2"):
        load(p, format="table")
    p.write_text("patient_id,visit_id,code,age,sex\n1,1,4019,3,Q\n2,1,4019,4,Z\n")
    with pytest.raises(DataError, match=r"column 'sex'.*sex='Q'"):
        load(p, format="table")


def test_impossible_age_and_mixed_icd10_are_reported(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("patient_id,visit_id,code,age,sex\n1,1,4019,-3,M\n2,1,J18.9,40,F\n"
                 "2,1,486,40,F\n3,1,4019,200,F\n")
    c, r = load(p, format="table")
    assert r.dropped["impossible age"] == 2 and r.dropped["ICD-10 code"] == 1
    assert c.n_rows == 1


def test_mimic4_bad_icd_version(tmp_path: Path) -> None:
    d = tmp_path / "hosp"
    shutil.copytree(FIX / "mimic4" / "hosp", d)
    with gzip.open(d / "diagnoses_icd.csv.gz", "wt") as f:
        f.write("subject_id,hadm_id,seq_num,icd_code,icd_version\n10,1000,1,4019,x\n")
    with pytest.raises(DataError, match="icd_version"):
        load(d, format="mimic4")


def test_unknown_format_lists_available() -> None:
    with pytest.raises(PluginError, match="available: meds, mimic3"):
        load(FIX / "mimic3", format="mimic5")
    assert set(LOADERS) == {"nhds", "mimic3", "mimic4", "meds", "table", "synpuf"}


def test_plugin_registers_loader_specs() -> None:
    from hiergen.loaders._plugin import hiergen_loaders

    specs = hiergen_loaders()
    assert {s.name for s in specs} == set(LOADERS)


# --- real data (skipped when ../shared/data is absent) -----------------------------------
def test_nhds_real(nhds_path: Path) -> None:
    c, r = load(nhds_path, format="nhds")
    assert c.n_visits == c.n_patients == 151_551
    assert r.rows_read == 1_105_849
    assert r.dropped == {"duplicate code in a visit": 3}
    assert len(c.vocab) == 8083
    assert c.age.min() == 0.0 and c.age.max() <= 99


def test_mimic3_demo_real(mimic3_demo_dir: Path) -> None:
    c, r = load(mimic3_demo_dir, format="mimic3", strict=True)
    assert (c.n_patients, c.n_visits, c.n_rows, len(c.vocab)) == (100, 129, 1761, 581)
    assert "276.5" in c.vocab and "585" in c.vocab
    assert float(c.age.max()) == 90.0 and "over 89" in r.notes[0]


def test_synpuf_fixture_real(synpuf_dir: Path) -> None:
    c, r = load(synpuf_dir, format="synpuf", strict=True)
    assert c.n_patients == 2 and c.n_visits == 2 and r.rows_kept == 18
    c2, _ = load(synpuf_dir, format="synpuf", claims=["inpatient", "outpatient"])
    assert c2.n_visits > c.n_visits
