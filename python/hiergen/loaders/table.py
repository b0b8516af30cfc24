"""A plain long table, CSV or Parquet: one diagnosis per row with patient, visit or time,
code, age and sex columns (names configurable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from hiergen.cohort import Cohort
from hiergen.demographics import FEMALE, MALE
from hiergen.errors import DataError
from hiergen.loaders._assemble import (
    SEX_MISSING,
    SEX_UNKNOWN,
    LongRows,
    assemble,
    rank_values,
    row_describer,
)
from hiergen.loaders._encoded import EncodedColumn, read_encoded_csv, read_encoded_parquet
from hiergen.loaders._io import (
    parse_numbers,
    parse_sex_column,
    parse_times,
    require_file,
)
from hiergen.loaders.report import LoadReport

_PARQUET = (".parquet", ".pq")


def read_encoded(
    path: Path, required: list[str], delimiter: str | None, what: str
) -> dict[str, EncodedColumn]:
    """The ``required`` columns of a CSV (delimiter sniffed unless given; ``.gz`` allowed) or
    Parquet file (by suffix), streamed in batches into dictionary codes."""
    require_file(path, what)
    if path.suffix.lower() in _PARQUET:
        return read_encoded_parquet(path, required, what=what)
    return read_encoded_csv(path, required, delimiter=delimiter, what=what)


def _visit_keys(
    patient: npt.NDArray[np.int32], visit: npt.NDArray[np.int32], n_visit: int
) -> npt.NDArray[Any]:
    """Dense visit numbers (in patient, visit order) of the (patient, visit) pairs."""
    key = patient.astype(np.int64) * np.int64(max(n_visit, 1))
    key += visit
    return rank_values(key)[0]


def check_column_parses(
    bad: np.ndarray,
    present: np.ndarray,
    column: str,
    path: Path,
    describe: Callable[[int], str],
    kind: str,
) -> None:
    """Raise when no present value of a column parses: it is the wrong column, not bad rows."""
    if present.any() and bad[present].all():
        i = int(np.flatnonzero(present)[0])
        raise DataError(f"{path}: column {column!r} holds no {kind}; e.g. {describe(i)}")


def load_table(
    path: str | Path,
    *,
    strict: bool = False,
    patient: str = "patient_id",
    visit: str | None = "visit_id",
    time: str | None = None,
    code: str = "code",
    age: str = "age",
    sex: str = "sex",
    delimiter: str | None = None,
    time_format: str | None = None,
    sex_values: dict[str, int] | None = None,
) -> tuple[Cohort, LoadReport]:
    """Load a long table. Visits are ``visit`` ids within a patient, or same ``time`` values
    when ``visit`` is None; visits are ordered by ``time`` where given, else by visit id.

    ``sex_values`` maps raw sex strings to 0 (male) / 1 (female); the default accepts M/F,
    male/female and 1/2 (1 = male), case-insensitively.
    """
    path = Path(path)
    if sex_values is not None:
        bad = {k: v for k, v in sex_values.items() if v not in (MALE, FEMALE)}
        if bad:
            raise ValueError(f"sex_values: codes must be 0 (male) or 1 (female), got {bad}")
    patient, code, age, sex = (c.lower() for c in (patient, code, age, sex))
    visit = visit.lower() if visit else None
    time = time.lower() if time else None
    if visit is None and time is None:
        raise ValueError("table loader: give a visit column or a time column (visit=..., time=...)")
    cols = [patient, code, age, sex] + [c for c in (visit, time) if c]
    data = read_encoded(path, cols, delimiter, "table")
    n = len(data[patient])
    is_csv = path.suffix.lower() not in _PARQUET
    describe = row_describer(path.name, {c: data[c] for c in cols},
                             range(2, n + 2) if is_csv else None)
    p_idx = data[patient].sort_in_place()  # ids become ranks of the sorted patient ids
    p_labels = data[patient].values()
    if (p_idx < 0).any():
        i = int(np.argmax(p_idx < 0))
        raise DataError(f"{path}: column {patient!r} has an empty patient id; e.g. {describe(i)}")
    times = None
    if time is not None:
        tcol = data[time]
        t_values = parse_times(tcol.dictionary, fmt=time_format)
        check_column_parses(np.isnat(t_values), np.ones(t_values.size, dtype=bool), time, path,
                            lambda j: describe(int(np.argmax(tcol.indices == j))), "date/times")
        times = tcol.lookup(t_values, np.datetime64("NaT", "s"))
    if visit:
        v_idx = data[visit].sort_in_place()
        if (v_idx < 0).any():
            i = int(np.argmax(v_idx < 0))
            raise DataError(f"{path}: column {visit!r} has an empty visit id; e.g. {describe(i)}")
        vkey = _visit_keys(p_idx, v_idx, int(v_idx.max(initial=0)) + 1)
        order = times if times is not None else v_idx
        del v_idx
    else:
        assert times is not None
        t_rank = np.unique(times.astype(np.int64), return_inverse=True)[1].astype(np.int32)
        vkey = _visit_keys(p_idx, t_rank, int(t_rank.max(initial=0)) + 1)
        del t_rank
        order = times
    acol = data[age]
    a_values, a_bad = parse_numbers(acol.dictionary)
    check_column_parses(a_bad, a_bad | ~np.isnan(a_values), age, path,
                        lambda j: describe(int(np.argmax(acol.indices == j))), "numeric ages")
    ages = acol.lookup(a_values.astype(np.float32), np.float32("nan"))
    bad_age = acol.lookup(a_bad, False) if a_bad.any() else None
    scol = data[sex]
    s_values = parse_sex_column(scol.dictionary, mapping=sex_values)
    if not (scol.indices < 0).any():  # a column with blanks is reported row by row instead
        check_column_parses(s_values == SEX_UNKNOWN, np.ones(s_values.size, dtype=bool), sex,
                            path, lambda j: describe(int(np.argmax(scol.indices == j))),
                            "sex values (M/F, male/female, 1/2)")
    sexes = scol.lookup(s_values, SEX_MISSING)
    ccol = data[code]
    rows = LongRows(
        patient=p_idx, patient_labels=p_labels, visit=vkey, code_index=ccol.indices,
        code_dict=ccol.dictionary.cast(pa.string()).to_pylist(), sex=sexes, age=ages,
        bad_age=bad_age, describe=describe, order=order, time=times,
    )
    report = LoadReport(source=str(path), format="table")
    return assemble(rows, report, strict=strict), report
