"""CMS DE-SynPUF: beneficiary summary files + inpatient (optionally outpatient) claims.

A visit is a claim (``CLM_ID``, segments merged) dated ``CLM_FROM_DT``; its codes are
``ICD9_DGNS_CD_1..10`` (plus ``ADMTNG_ICD9_DGNS_CD`` with ``admitting=True``). Sex is
``BENE_SEX_IDENT_CD`` (1 male, 2 female); age = claim date - ``BENE_BIRTH_DT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.loaders._assemble import LongRows, assemble, factorize, sorted_factorize
from hiergen.loaders._io import parse_sex_column, parse_times, read_csv, years_between
from hiergen.loaders.mimic3 import join_index
from hiergen.loaders.report import LoadReport

N_DX = 10
_CLAIM_FILES = {"inpatient": "*Inpatient_Claims*.csv*", "outpatient": "*Outpatient_Claims*.csv*"}


def load_synpuf(
    directory: str | Path,
    *,
    strict: bool = False,
    claims: Sequence[str] | str = ("inpatient",),
    admitting: bool = False,
) -> tuple[Cohort, LoadReport]:
    """Load a DE-SynPUF sample directory (beneficiary files of any years + claim files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"synpuf: {directory} is not a directory")
    kinds = [claims] if isinstance(claims, str) else list(claims)
    bene_files = sorted(directory.glob("*Beneficiary_Summary_File*.csv*"))
    if not bene_files:
        raise DataError(f"synpuf: {directory} has no *Beneficiary_Summary_File*.csv")
    bene_cols = ["desynpuf_id", "bene_birth_dt", "bene_sex_ident_cd"]
    bene = pa.concat_tables(
        read_csv(f, bene_cols, string_columns=bene_cols, what="synpuf beneficiary").select(
            bene_cols
        )
        for f in bene_files
    )
    dx_cols = [f"icd9_dgns_cd_{k}" for k in range(1, N_DX + 1)]
    if admitting:
        dx_cols = ["admtng_icd9_dgns_cd", *dx_cols]
    need = ["desynpuf_id", "clm_id", "clm_from_dt"]
    parts = []
    for kind in kinds:
        if kind not in _CLAIM_FILES:
            raise ValueError(f"synpuf: claims={kind!r}; expected one of {sorted(_CLAIM_FILES)}")
        files = sorted(directory.glob(_CLAIM_FILES[kind]))
        if not files:
            raise DataError(f"synpuf: {directory} has no {_CLAIM_FILES[kind]} file")
        for f in files:
            t = read_csv(f, need + dx_cols, string_columns=need + dx_cols, what=f"synpuf {kind}")
            parts.append((f.name, t.select(need + dx_cols)))
    # --- melt the claim tables into one row per (claim, diagnosis column) --------------------
    pid: list[pa.Array] = []
    cid: list[pa.Array] = []
    date: list[pa.Array] = []
    code: list[pa.Array] = []
    where: list[str] = []
    for name, t in parts:
        n = t.num_rows
        lines = np.arange(2, n + 2)
        for col in dx_cols:
            vals = t.column(col).combine_chunks()
            ok = np.asarray(vals.is_valid().to_numpy(zero_copy_only=False))
            sel = pa.array(np.flatnonzero(ok))
            pid.append(t.column("desynpuf_id").combine_chunks().take(sel))
            cid.append(t.column("clm_id").combine_chunks().take(sel))
            date.append(t.column("clm_from_dt").combine_chunks().take(sel))
            code.append(vals.take(sel))
            where.extend(f"{name} line {ln}, {col.upper()}" for ln in lines[ok])
    pid_a, cid_a = pa.concat_arrays(pid), pa.concat_arrays(cid)
    code_a, date_a = pa.concat_arrays(code), pa.concat_arrays(date)
    if len(pid_a) == 0:
        raise DataError(f"synpuf: the claim files in {directory} hold no diagnosis codes")
    bene_ids = bene.column("desynpuf_id").combine_chunks()
    b_idx = join_index(pid_a, bene_ids)
    births = parse_times(bene.column("bene_birth_dt"), fmt="%Y%m%d")
    sexes = parse_sex_column(bene.column("bene_sex_ident_cd"))
    t_rows = parse_times(date_a, fmt="%Y%m%d")
    found = b_idx >= 0
    born = np.where(found, births[np.maximum(b_idx, 0)], np.datetime64("NaT"))
    sex = np.where(found, sexes[np.maximum(b_idx, 0)], -1).astype(np.int8)
    p_idx, p_labels = sorted_factorize(pid_a)
    v_idx, _ = factorize(cid_a)
    c_idx, c_dict = factorize(code_a)

    def describe(i: int) -> str:
        return (f"{where[i]}: DESYNPUF_ID={pid_a[i].as_py()!r}, CLM_ID={cid_a[i].as_py()!r}, "
                f"code={code_a[i].as_py()!r}")

    rows = LongRows(
        patient=p_idx, patient_labels=p_labels, visit=v_idx, code_index=c_idx,
        code_dict=list(c_dict), sex=sex, age=years_between(born.astype("datetime64[s]"), t_rows),
        describe=describe, order=t_rows, time=t_rows,
    )
    report = LoadReport(source=str(directory), format="synpuf")
    if not found.all():
        from hiergen.loaders.mimic3 import _subset

        report.drop("no matching patient", int((~found).sum()),
                    [describe(int(i)) for i in np.flatnonzero(~found)[:3]])
        rows = _subset(rows, found)
    cohort = assemble(rows, report, strict=False)
    report.rows_read = int(len(pid_a))
    if strict:
        report.check_strict()
    return cohort, report
