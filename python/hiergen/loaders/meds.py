"""MEDS datasets: ``data/**/*.parquet`` with ``subject_id``, ``time``, ``code``.

Diagnosis codes carry a prefix (``ICD9CM/401.9``; configurable); ICD-10 codes
(``ICD10CM/...``) are reported as dropped; other codes (labs, drugs, ...) are ignored and
counted. Sex comes from static rows (null time) such as ``GENDER//F``; birth from the
``MEDS_BIRTH`` event. Visits group codes of the same timestamp, or of one admission-id column.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.loaders._assemble import (
    SEX_MISSING,
    LongRows,
    assemble,
    factorize,
    row_describer,
    sorted_factorize,
)
from hiergen.loaders._io import parse_times, years_between
from hiergen.loaders.report import LoadReport

DEFAULT_SEX_CODES: Mapping[str, int] = {
    "GENDER//M": 0, "GENDER//F": 1, "SEX//M": 0, "SEX//F": 1,
    "GENDER/M": 0, "GENDER/F": 1, "SEX/M": 0, "SEX/F": 1,
}


def _data_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    root = path / "data" if (path / "data").is_dir() else path
    if not root.is_dir():
        raise DataError(f"meds: {path} does not exist")
    files = sorted(root.rglob("*.parquet"))
    if not files:
        raise DataError(f"meds: no Parquet files under {root} (expected data/**/*.parquet)")
    return files


def load_meds(
    path: str | Path,
    *,
    strict: bool = False,
    code_prefix: str = "ICD9CM/",
    icd10_prefix: str = "ICD10CM/",
    birth_code: str = "MEDS_BIRTH",
    sex_codes: Mapping[str, int] | None = None,
    visit_column: str | None = None,
) -> tuple[Cohort, LoadReport]:
    """Load a MEDS dataset directory (or one shard). ``visit_column`` (e.g. ``hadm_id``) groups
    visits by that column instead of by timestamp."""
    path = Path(path)
    files = _data_files(path)
    cols = ["subject_id", "time", "code"] + ([visit_column] if visit_column else [])
    tables: list[pa.Table] = []
    for f in files:
        try:
            t = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"meds: cannot read Parquet file {f}: {exc}") from exc
        missing = [c for c in cols if c not in t.column_names]
        if missing:
            raise DataError(f"meds: file {f} lacks column(s) {', '.join(missing)} "
                            f"(found: {', '.join(t.column_names[:12])})")
        t = t.select(cols).append_column("_file", pa.array(np.full(t.num_rows, len(tables))))
        t = t.append_column("_row", pa.array(np.arange(t.num_rows, dtype=np.int64)))
        tables.append(t.cast(t.schema.set(t.schema.get_field_index("time"),
                                          pa.field("time", pa.timestamp("s")))))
    table = pa.concat_tables(tables)
    if table.num_rows == 0:
        raise DataError(f"meds: {path} holds no rows")
    code = table.column("code").combine_chunks().cast(pa.string())
    subj = table.column("subject_id").combine_chunks()
    times = parse_times(table.column("time"))
    report = LoadReport(source=str(path), format="meds")
    names = [f.name for f in files]

    def where(i: int) -> str:
        return f"{names[table.column('_file')[i].as_py()]} row {table.column('_row')[i].as_py()}"

    # --- static rows: sex; birth events ------------------------------------------------------
    s_idx, s_labels = sorted_factorize(subj)
    n_subj = s_labels.size
    sex_map = {k.upper(): v for k, v in (sex_codes or DEFAULT_SEX_CODES).items()}
    codes_upper = pc.utf8_upper(code)
    is_sex = pc.is_in(codes_upper, value_set=pa.array(list(sex_map))).to_numpy(
        zero_copy_only=False
    )
    sex_of = np.full(n_subj, SEX_MISSING, dtype=np.int8)
    if is_sex.any():
        rows_sex = np.flatnonzero(is_sex)
        vals = np.array([sex_map[c] for c in codes_upper.take(pa.array(rows_sex)).to_pylist()],
                        dtype=np.int8)
        sex_of[s_idx[rows_sex]] = vals
    is_birth = pc.equal(code, birth_code).fill_null(False).to_numpy(zero_copy_only=False)
    birth_of = np.full(n_subj, np.datetime64("NaT"), dtype="datetime64[s]")
    birth_of[s_idx[is_birth]] = times[is_birth]
    # --- diagnosis rows ---------------------------------------------------------------------
    is_dx = pc.starts_with(code, code_prefix).fill_null(False).to_numpy(zero_copy_only=False)
    is_10 = pc.starts_with(code, icd10_prefix).fill_null(False).to_numpy(zero_copy_only=False)
    other = ~(is_dx | is_10 | is_sex | is_birth)
    report.ignore(f"codes that are not {code_prefix} or {icd10_prefix} diagnoses", int(other.sum()))
    report.ignore("static sex and birth rows", int((is_sex | is_birth).sum()))
    keep = np.flatnonzero(is_dx | is_10)
    raw = pc.utf8_slice_codeunits(code.take(pa.array(keep)), len(code_prefix))
    c_idx, c_dict = factorize(raw)
    c_dict_list = list(c_dict)
    t_rows = times[keep]
    pat = s_idx[keep]
    if visit_column:
        v_idx, _ = factorize(table.column(visit_column).combine_chunks().take(pa.array(keep)))
        no_visit = v_idx < 0
    else:
        v_idx, _ = factorize(t_rows.astype(np.int64))
        no_visit = np.isnat(t_rows)
    key = pat * np.int64(max(int(v_idx.max(initial=0)) + 1, 1)) + np.maximum(v_idx, 0)
    vkey = np.unique(key, return_inverse=True)[1].astype(np.int64)
    age = years_between(birth_of[pat], t_rows)
    show = {"subject_id": subj.take(pa.array(keep)), "time": t_rows,
            "code": code.take(pa.array(keep))}
    base = row_describer("", show)

    def describe(i: int) -> str:
        return f"{where(int(keep[i]))}:" + base(i).split(":", 1)[1]

    rows = LongRows(
        patient=pat, patient_labels=s_labels, visit=vkey, code_index=c_idx,
        code_dict=c_dict_list, sex=sex_of[pat], age=age, describe=describe,
        order=t_rows, time=t_rows, icd10=is_10[keep],
    )
    if no_visit.any():
        report.drop("no matching visit", int(no_visit.sum()),
                    [describe(int(i)) for i in np.flatnonzero(no_visit)[:3]])
        rows = _without(rows, ~no_visit)
    cohort = assemble(rows, report, strict=False)
    report.rows_read = int(keep.size)
    if strict:
        report.check_strict()
    return cohort, report


def _without(rows: LongRows, keep: np.ndarray) -> LongRows:
    from hiergen.loaders.mimic3 import _subset

    return _subset(rows, keep)
