"""A plain long table, CSV or Parquet: one diagnosis per row with patient, visit or time,
code, age and sex columns (names configurable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.loaders._assemble import (
    SEX_UNKNOWN,
    LongRows,
    assemble,
    factorize,
    row_describer,
    sorted_factorize,
)
from hiergen.loaders._io import (
    parse_numbers,
    parse_sex_column,
    parse_times,
    read_csv,
    read_parquet,
    require_file,
)
from hiergen.loaders.report import LoadReport

_PARQUET = (".parquet", ".pq")


def read_any(
    path: Path, required: list[str], string_columns: list[str], delimiter: str | None, what: str
) -> pa.Table:
    """CSV (delimiter sniffed unless given; ``.gz`` allowed) or Parquet, by file suffix."""
    require_file(path, what)
    if path.suffix.lower() in _PARQUET:
        return read_parquet(path, required, what=what)
    return read_csv(path, required, string_columns=string_columns, delimiter=delimiter, what=what)


def _visit_keys(patient: np.ndarray, visit: np.ndarray) -> np.ndarray:
    key = patient * np.int64(max(int(visit.max(initial=0)) + 1, 1)) + visit
    return np.unique(key, return_inverse=True)[1].astype(np.int64)


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
    patient, code, age, sex = (c.lower() for c in (patient, code, age, sex))
    visit = visit.lower() if visit else None
    time = time.lower() if time else None
    if visit is None and time is None:
        raise ValueError("table loader: give a visit column or a time column (visit=..., time=...)")
    cols = [patient, code, age, sex] + [c for c in (visit, time) if c]
    table = read_any(path, cols, [code, sex, patient] + ([visit] if visit else []), delimiter,
                     "table")
    is_csv = path.suffix.lower() not in _PARQUET
    lines = np.arange(2, table.num_rows + 2, dtype=np.int64) if is_csv else None
    show = {c: table.column(c) for c in cols}
    describe = row_describer(path.name, show, lines)
    p_idx, p_labels = sorted_factorize(table.column(patient))
    if (p_idx < 0).any():
        i = int(np.flatnonzero(p_idx < 0)[0])
        raise DataError(f"{path}: column {patient!r} has an empty patient id; e.g. {describe(i)}")
    times = parse_times(table.column(time), fmt=time_format) if time else None
    if times is not None and time is not None:
        raw_time = table.column(time)
        present = np.asarray(raw_time.is_valid().to_numpy(zero_copy_only=False))
        check_column_parses(np.isnat(times), present, time, path, describe, "date/times")
    if visit:
        v_idx, _ = sorted_factorize(table.column(visit))
        if (v_idx < 0).any():
            i = int(np.flatnonzero(v_idx < 0)[0])
            raise DataError(f"{path}: column {visit!r} has an empty visit id; e.g. {describe(i)}")
        vkey = _visit_keys(p_idx, v_idx)
        order = times if times is not None else v_idx
    else:
        assert times is not None
        t_idx, _ = factorize(times.astype(np.int64))
        vkey = _visit_keys(p_idx, t_idx)
        order = times
    ages, bad_age = parse_numbers(table.column(age))
    check_column_parses(bad_age, bad_age | ~np.isnan(ages), age, path, describe, "numeric ages")
    sexes = parse_sex_column(table.column(sex), mapping=sex_values)
    check_column_parses(sexes == SEX_UNKNOWN, sexes >= SEX_UNKNOWN, sex, path, describe,
                        "sex values (M/F, male/female, 1/2)")
    c_idx, c_dict = factorize(table.column(code).cast(pa.string()))
    rows = LongRows(
        patient=p_idx, patient_labels=p_labels, visit=vkey, code_index=c_idx,
        code_dict=list(c_dict), sex=sexes, age=ages, bad_age=bad_age, describe=describe,
        order=order, time=times,
    )
    report = LoadReport(source=str(path), format="table")
    return assemble(rows, report, strict=strict), report
