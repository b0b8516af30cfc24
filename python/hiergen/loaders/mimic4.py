"""MIMIC-IV ``hosp/`` module: diagnoses_icd (with icd_version), admissions, patients.

Rows with ``icd_version`` 10 are reported as dropped ICD-10 codes. Age at admission =
``anchor_age + year(admittime) - anchor_year``; MIMIC-IV groups patients over 89 at anchor age
91: those become 90. Tables may be ``.csv`` or ``.csv.gz`` (the public demo's layout).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.loaders._io import find_table, parse_numbers, read_csv
from hiergen.loaders.mimic3 import OLDEST_AGE, _assemble_hosp, _col
from hiergen.loaders.report import LoadReport


def _hosp_dir(path: Path) -> Path:
    if (path / "hosp").is_dir():
        return path / "hosp"
    if path.is_dir():
        return path
    raise DataError(f"mimic4: {path} is not a MIMIC-IV directory (expected a hosp/ folder)")


def load_mimic4(
    directory: str | Path, *, strict: bool = False, seq_order: bool = True
) -> tuple[Cohort, LoadReport]:
    """Load MIMIC-IV from its root (containing ``hosp/``) or from the ``hosp`` folder itself."""
    hosp = _hosp_dir(Path(directory))
    dpath = find_table(hosp, "diagnoses_icd", "mimic4")
    apath = find_table(hosp, "admissions", "mimic4")
    ppath = find_table(hosp, "patients", "mimic4")
    diag = read_csv(dpath, ["subject_id", "hadm_id", "icd_code", "icd_version"],
                    string_columns=["icd_code", "icd_version"], what="mimic4 diagnoses_icd")
    adm = read_csv(apath, ["subject_id", "hadm_id", "admittime"], what="mimic4 admissions")
    pat = read_csv(ppath, ["subject_id", "gender", "anchor_age", "anchor_year"],
                   string_columns=["gender"], what="mimic4 patients")
    lines = np.arange(2, diag.num_rows + 2, dtype=np.int64)
    if seq_order and "seq_num" in diag.column_names:
        keys = [("hadm_id", "ascending"), ("seq_num", "ascending")]
        order = pc.sort_indices(diag, sort_keys=keys)
        diag = diag.take(order)
        lines = lines[order.to_numpy()]
    version = pc.utf8_trim_whitespace(_col(diag, "icd_version").cast(pa.string()))
    vnp = np.asarray(version.fill_null("").to_pylist(), dtype=object)
    bad_version = ~np.isin(vnp, ["9", "10"])
    if bad_version.any():
        i = int(np.flatnonzero(bad_version)[0])
        raise DataError(
            f"mimic4: {dpath} line {lines[i]}: column icd_version must be 9 or 10, got {vnp[i]!r}"
        )
    report = LoadReport(source=str(hosp), format="mimic4")
    return _assemble_hosp(
        diag, adm, pat, lines=lines, code_column="icd_code", dname=dpath.name, report=report,
        strict=strict, age_of=_age_mimic4, icd10=(vnp == "10"),
    )


def _age_mimic4(
    pat: pa.Table, p_idx: np.ndarray, admit: np.ndarray, report: LoadReport
) -> np.ndarray:
    anchor_age, _ = parse_numbers(_col(pat, "anchor_age"))
    anchor_year, _ = parse_numbers(_col(pat, "anchor_year"))
    ok = p_idx >= 0
    a_age = np.where(ok, anchor_age[np.maximum(p_idx, 0)], np.nan)
    a_year = np.where(ok, anchor_year[np.maximum(p_idx, 0)], np.nan)
    year = admit.astype("datetime64[Y]").astype(np.float64) + 1970.0
    year[np.isnat(admit)] = np.nan
    age = a_age + (year - a_year)
    old = a_age > 89
    if old.any():
        report.notes.append(
            f"{int(old.sum()):,} rows of patients over 89 (anchor_age 91) set to age {OLDEST_AGE:g}"
        )
    age[old] = OLDEST_AGE
    return age
