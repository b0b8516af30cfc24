"""Cohort Parquet round trip, and loader output checked against a plain-Python grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.hierarchy import Hierarchy
from hiergen.loaders import load

FIX = Path(__file__).parent / "fixtures"
CODES = ["401.9", "250.00", "038.9", "V15.82", "E888.9", "486", "276.5"]


def _same(a: Cohort, b: Cohort) -> None:
    assert a.vocab == b.vocab
    for name in ("patient_offsets", "visit_offsets", "codes", "sex", "age"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.patient_ids.tolist() == b.patient_ids.tolist()
    if a.time is None:
        assert b.time is None
    else:
        assert b.time is not None
        np.testing.assert_array_equal(a.time, b.time)


@pytest.mark.parametrize(("path", "fmt"), [("mimic3", "mimic3"), ("nhds/sample.txt", "nhds"),
                                           ("synpuf", "synpuf")])
def test_round_trip_fixtures(tmp_path: Path, path: str, fmt: str) -> None:
    c, _ = load(FIX / path, format=fmt)
    out = c.save_parquet(tmp_path / "c.parquet")
    _same(c, Cohort.load_parquet(out))


def test_round_trip_keeps_patients_without_visits(tmp_path: Path) -> None:
    c = Cohort(
        patient_ids=np.array(["a", "b", "c"], dtype=object),
        patient_offsets=np.array([0, 1, 1, 2]), visit_offsets=np.array([0, 2, 3]),
        codes=np.array([1, 0, 1], dtype=np.int32), vocab=("250.00", "401.9"),
        sex=np.array([0, 1], np.int8), age=np.array([3.5, 70], np.float32),
    )
    _same(c, Cohort.load_parquet(c.save_parquet(tmp_path / "c.parquet")))


def test_load_parquet_rejects_other_files(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="not a hiergen cohort"):
        Cohort.load_parquet(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="does not exist"):
        Cohort.load_parquet(tmp_path / "none.parquet")


_row = st.tuples(st.integers(0, 4), st.integers(0, 3), st.sampled_from(CODES),
                 st.sampled_from(["M", "F"]))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_row, min_size=1, max_size=40))
def test_table_loader_matches_plain_python_grouping(tmp_path: Path, rows: list) -> None:  # type: ignore[type-arg]
    # sex and age are per patient so that visits are consistent
    lines = ["patient_id,visit_id,code,age,sex"]
    sex_of = {}
    for p, v, code, s in rows:
        sex_of.setdefault(p, s)
        lines.append(f"p{p},{v},{code},{10 * p + v},{sex_of[p]}")
    f = tmp_path / "t.csv"
    f.write_text("\n".join(lines) + "\n")
    c, r = load(f, format="table")
    expected: dict[tuple[int, int], list[str]] = {}
    for p, v, code, _ in rows:
        codes = expected.setdefault((p, v), [])
        if code not in codes:
            codes.append(code)
    got = {}
    for pi in range(c.n_patients):
        for vi in range(c.patient_offsets[pi], c.patient_offsets[pi + 1]):
            codes = [c.vocab[i] for i in c.codes[c.visit_offsets[vi] : c.visit_offsets[vi + 1]]]
            pid = int(str(c.patient_ids[pi])[1:])
            v = int(round(float(c.age[vi]) - 10 * pid))
            got[(pid, v)] = codes
            assert c.sex[vi] == (0 if sex_of[pid] == "M" else 1)
    assert got == expected
    assert r.rows_read == len(rows)
    assert r.rows_kept + r.dropped.get("duplicate code in a visit", 0) == len(rows)
    # visits of a patient are in visit-id order
    for pi in range(c.n_patients):
        ages = c.age[c.patient_offsets[pi] : c.patient_offsets[pi + 1]]
        assert (np.diff(ages) > 0).all()


def test_subset_with_a_smaller_hierarchy_maps_its_codes() -> None:
    """A subset keeps the whole vocabulary; only its own codes must be in the hierarchy."""
    cohort = Cohort(
        patient_ids=np.array(["a", "b"], dtype=object),
        patient_offsets=np.array([0, 1, 2], dtype=np.int64),
        visit_offsets=np.array([0, 2, 3], dtype=np.int64),
        codes=np.array([0, 1, 2], dtype=np.int32),
        vocab=("401.9", "250.00", "003.0"),
        sex=np.array([0, 1], dtype=np.int8),
        age=np.array([50.0, 60.0], dtype=np.float32),
    )
    first = cohort.select_visits([0])
    hierarchy = Hierarchy.from_codes(["401.9", "250.00"])
    ids = first.code_ids_in(hierarchy)
    assert [hierarchy.codes[i] for i in ids] == ["401.9", "250.00"]
    with pytest.raises(KeyError, match="003.0"):
        cohort.code_ids_in(hierarchy)
