"""The NHDS public-use fixed-width file (NHDS 2010 layout), bz2, gzip or plain.

One record is one patient with one visit. Layout (1-based): newborn flag 3, age unit 4
(1 years, 2 months, 3 days), age 5-6, sex 7 (1 male, 2 female), 15 diagnoses of 5 characters
in 28-102 (ICD-9-CM without the dot, ``-`` padded, blank when absent).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.loaders._assemble import SEX_MISSING, SEX_UNKNOWN, LongRows, assemble
from hiergen.loaders._io import read_bytes, require_file
from hiergen.loaders.report import LoadReport

log = logging.getLogger(__name__)

RECORD_LENGTH = 149
DIAG_START, N_DIAG, DIAG_WIDTH = 27, 15, 5
_UNIT_YEARS = {ord("1"): 1.0, ord("2"): 12.0, ord("3"): 365.25}


def _records(data: bytes, path: Path) -> np.ndarray:
    """The file as an ``(n, 149)`` uint8 array; raises naming the first bad line."""
    if not data.strip():
        raise DataError(f"nhds: file {path} is empty")
    eol = b"\r\n" if data[:RECORD_LENGTH + 2].endswith(b"\r\n") else b"\n"
    stride = RECORD_LENGTH + len(eol)
    if not data.endswith(eol):
        data += eol
    if len(data) % stride:
        lines = data.split(eol)
        bad = next(i for i, ln in enumerate(lines) if len(ln) != RECORD_LENGTH)
        raise DataError(
            f"nhds: {path} line {bad + 1} has {len(lines[bad])} characters, expected "
            f"{RECORD_LENGTH} (is this the NHDS public-use fixed-width file?)"
        )
    arr = np.frombuffer(data, dtype=np.uint8).reshape(-1, stride)
    ends = arr[:, RECORD_LENGTH:]
    if (ends != np.frombuffer(eol, dtype=np.uint8)).any():
        bad = int(np.flatnonzero((ends != np.frombuffer(eol, dtype=np.uint8)).any(axis=1))[0])
        raise DataError(
            f"nhds: {path} line {bad + 1} is not {RECORD_LENGTH} characters long "
            "(is this the NHDS public-use fixed-width file?)"
        )
    return arr[:, :RECORD_LENGTH]


def load_nhds(path: str | Path, *, strict: bool = False) -> tuple[Cohort, LoadReport]:
    """Load an NHDS public-use file: one patient and one visit per record."""
    path = require_file(Path(path), "nhds")
    rec = _records(read_bytes(path), path)
    n = rec.shape[0]
    # --- demographics per record --------------------------------------------------------
    age_bytes = np.where(rec[:, 4:6] == ord(" "), ord("0"), rec[:, 4:6])  # right-aligned
    digits = age_bytes.astype(np.int16) - ord("0")
    age_ok = ((digits >= 0) & (digits <= 9)).all(axis=1)
    raw_age = (digits[:, 0] * 10 + digits[:, 1]).astype(np.float64)
    unit = np.zeros(n, dtype=np.float64)
    for byte, per_year in _UNIT_YEARS.items():
        unit[rec[:, 3] == byte] = per_year
    age_ok &= unit > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        age = np.where(age_ok, raw_age / np.where(unit > 0, unit, 1.0), np.nan)
    age[rec[:, 2] == ord("1")] = 0.0  # newborn infants
    blank_age = (rec[:, 3:6] == ord(" ")).all(axis=1)
    bad_age = ~age_ok & ~blank_age & (rec[:, 2] != ord("1"))
    sex = np.full(n, SEX_UNKNOWN, dtype=np.int8)
    sex[rec[:, 6] == ord("1")] = 0
    sex[rec[:, 6] == ord("2")] = 1
    sex[rec[:, 6] == ord(" ")] = SEX_MISSING
    # --- diagnosis slots: one row per non-blank slot ------------------------------------
    diag = np.ascontiguousarray(rec[:, DIAG_START : DIAG_START + N_DIAG * DIAG_WIDTH])
    slots = diag.view(f"S{DIAG_WIDTH}").reshape(n, N_DIAG)
    present = np.char.strip(slots) != b""
    record_, slot_ = np.nonzero(present)
    record, slot = record_.astype(np.int32), slot_.astype(np.int8)  # 5 bytes a row, not 16
    del record_, slot_
    uniq, code_index_ = np.unique(slots[record, slot], return_inverse=True)
    code_index = code_index_.reshape(-1).astype(np.int16 if uniq.size < 2**15 else np.int32)
    del code_index_
    code_dict = [u.decode("ascii", "replace").strip() for u in uniq]

    def describe(i: int) -> str:
        r, s = int(record[i]), int(slot[i])
        line = rec[r].tobytes().decode("ascii", "replace")
        return (
            f"{path.name} line {r + 1}, diagnosis {s + 1}: code={code_dict[code_index[i]]!r}, "
            f"sex={line[6]!r}, age unit={line[3]!r}, age={line[4:6]!r}"
        )

    rows = LongRows(
        patient=record,
        patient_labels=np.arange(1, n + 1, dtype=np.int64),
        visit=record,
        code_index=code_index,
        code_dict=code_dict,
        sex=sex[record],
        age=age.astype(np.float32)[record],
        bad_age=bad_age[record],
        describe=describe,
    )
    empty = np.flatnonzero(~present.any(axis=1))
    rows.extra_empty_count = int(empty.size)
    rows.extra_empty_examples = [f"{path.name} line {int(r) + 1}: no diagnosis" for r in empty[:3]]
    report = LoadReport(source=str(path), format="nhds")
    cohort = assemble(rows, report, strict=strict)
    return cohort, report
