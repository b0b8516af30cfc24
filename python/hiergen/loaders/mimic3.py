"""MIMIC-III: DIAGNOSES_ICD + ADMISSIONS (visit order, time) + PATIENTS (sex, date of birth).

Column names are matched case-insensitively (the demo is lower case, the full database upper
case); tables may be ``.csv`` or ``.csv.gz``. Age at admission = ADMITTIME - DOB; MIMIC shifts
the birth dates of patients over 89 so that they appear about 300 years old: those become 90.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hiergen.cohort import Cohort
from hiergen.loaders._assemble import LongRows, assemble, factorize, row_describer
from hiergen.loaders._io import find_table, parse_sex_column, parse_times, read_csv, years_between
from hiergen.loaders.report import LoadReport

AgeFn = Callable[[pa.Table, np.ndarray, np.ndarray, LoadReport], np.ndarray]

#: Ages above this (in years) are MIMIC's shifted ages of patients over 89.
SHIFTED_AGE = 150.0
OLDEST_AGE = 90.0


def join_index(left: pa.Array, right: pa.Array) -> np.ndarray:
    """Position in ``right`` of every ``left`` key (-1 where absent)."""
    idx = pc.index_in(left, value_set=right)
    return idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _col(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def load_mimic3(
    directory: str | Path, *, strict: bool = False, seq_order: bool = True
) -> tuple[Cohort, LoadReport]:
    """Load a MIMIC-III directory (demo or full). ``seq_order`` keeps codes in SEQ_NUM order."""
    directory = Path(directory)
    dpath = find_table(directory, "DIAGNOSES_ICD", "mimic3")
    apath = find_table(directory, "ADMISSIONS", "mimic3")
    ppath = find_table(directory, "PATIENTS", "mimic3")
    diag = read_csv(dpath, ["subject_id", "hadm_id", "icd9_code"], string_columns=["icd9_code"],
                    what="mimic3 DIAGNOSES_ICD")
    adm = read_csv(apath, ["subject_id", "hadm_id", "admittime"], what="mimic3 ADMISSIONS")
    pat = read_csv(ppath, ["subject_id", "gender", "dob"], string_columns=["gender"],
                   what="mimic3 PATIENTS")
    lines = np.arange(2, diag.num_rows + 2, dtype=np.int64)
    if seq_order and "seq_num" in diag.column_names:
        order = pc.sort_indices(
            diag, sort_keys=[("hadm_id", "ascending"), ("seq_num", "ascending")]
        )
        diag = diag.take(order)
        lines = lines[order.to_numpy()]
    report = LoadReport(source=str(directory), format="mimic3")
    return _assemble_hosp(
        diag, adm, pat, lines=lines, code_column="icd9_code", dname=dpath.name,
        report=report, strict=strict, age_of=_age_mimic3,
    )


def _age_mimic3(
    pat: pa.Table, p_idx: np.ndarray, admit: np.ndarray, report: LoadReport
) -> np.ndarray:
    dob = parse_times(_col(pat, "dob"))
    born = np.where(p_idx >= 0, dob[np.maximum(p_idx, 0)], np.datetime64("NaT"))
    age = years_between(born.astype("datetime64[s]"), admit)
    shifted = age > SHIFTED_AGE
    if shifted.any():
        report.notes.append(
            f"{int(shifted.sum()):,} rows of patients over 89 (shifted ages ~300) set to age "
            f"{OLDEST_AGE:g}"
        )
    age[shifted] = OLDEST_AGE
    return age


def _assemble_hosp(
    diag: pa.Table,
    adm: pa.Table,
    pat: pa.Table,
    *,
    lines: np.ndarray,
    code_column: str,
    dname: str,
    report: LoadReport,
    strict: bool,
    age_of: AgeFn,
    icd10: np.ndarray | None = None,
) -> tuple[Cohort, LoadReport]:
    """Join diagnosis rows to admissions and patients (shared by MIMIC-III and MIMIC-IV)."""
    hadm = _col(diag, "hadm_id")
    a_idx = join_index(hadm, _col(adm, "hadm_id"))
    subj = _col(diag, "subject_id")
    p_idx = join_index(subj, _col(pat, "subject_id"))
    admit_all = parse_times(_col(adm, "admittime"))
    admit = np.where(a_idx >= 0, admit_all[np.maximum(a_idx, 0)], np.datetime64("NaT"))
    admit = admit.astype("datetime64[s]")
    sex_all = parse_sex_column(_col(pat, "gender"))
    sex = np.where(p_idx >= 0, sex_all[np.maximum(p_idx, 0)], -1).astype(np.int8)
    age = age_of(pat, p_idx, admit, report)
    code_index, code_dict = factorize(_col(diag, code_column))
    patient, labels = factorize(subj)
    visit, _ = factorize(hadm)
    describe = row_describer(
        dname, {"subject_id": subj, "hadm_id": hadm, code_column: _col(diag, code_column)}, lines
    )
    rows = LongRows(
        patient=patient, patient_labels=labels, visit=visit, code_index=code_index,
        code_dict=list(code_dict), sex=sex, age=age, describe=describe,
        order=admit, time=admit, icd10=icd10,
    )
    # Rows whose admission or patient is missing from the other tables.
    no_adm = a_idx < 0
    no_pat = p_idx < 0
    if no_adm.any():
        ex = [describe(int(i)) for i in np.flatnonzero(no_adm)[:3]]
        report.drop("no matching visit", int(no_adm.sum()), ex)
    if no_pat.any():
        ex = [describe(int(i)) for i in np.flatnonzero(no_pat & ~no_adm)[:3]]
        report.drop("no matching patient", int((no_pat & ~no_adm).sum()), ex)
    bad = no_adm | no_pat
    if bad.any():
        rows = _subset(rows, ~bad)
    # Admissions with no diagnosis row at all.
    adm_ids = _col(adm, "hadm_id")
    with_rows = join_index(adm_ids, hadm) >= 0
    if (~with_rows).any():
        miss = np.flatnonzero(~with_rows)
        rows.extra_empty_count = int(miss.size)
        rows.extra_empty_examples = [
            f"ADMISSIONS hadm_id={adm_ids[int(i)].as_py()}: no diagnosis row" for i in miss[:3]
        ]
    cohort = assemble(rows, report, strict=False)
    report.rows_read += int(bad.sum())
    if strict:
        report.check_strict()
    return cohort, report


def _subset(rows: LongRows, keep: np.ndarray) -> LongRows:
    idx = np.flatnonzero(keep)

    def describe(i: int) -> str:
        return rows.describe(int(idx[i]))

    return LongRows(
        patient=rows.patient[idx], patient_labels=rows.patient_labels, visit=rows.visit[idx],
        code_index=rows.code_index[idx], code_dict=rows.code_dict, sex=rows.sex[idx],
        age=rows.age[idx], describe=describe,
        order=None if rows.order is None else rows.order[idx],
        time=None if rows.time is None else rows.time[idx],
        bad_age=None if rows.bad_age is None else rows.bad_age[idx],
        icd10=None if rows.icd10 is None else rows.icd10[idx],
    )
