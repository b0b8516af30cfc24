"""Turn a long table of diagnosis rows into a :class:`~hiergen.cohort.Cohort` and a report.

Every loader reduces its format to :class:`LongRows` (one entry per diagnosis row, numpy arrays)
and calls :func:`assemble`, so the drop rules are the same for every format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hiergen import icd9
from hiergen.cohort import Cohort
from hiergen.demographics import MAX_AGE
from hiergen.loaders.report import LoadReport

log = logging.getLogger(__name__)

#: Sex codes in :class:`LongRows` besides 0 (male) and 1 (female).
SEX_MISSING = -1
SEX_UNKNOWN = -2

_CLASS_REASON = {
    "malformed": "malformed code",
    "icd10": "ICD-10 code",
    "unknown": "code not in ICD-9-CM",
}


@dataclass
class LongRows:
    """Diagnosis rows of one source, in source order.

    Attributes:
        patient: int64 index into ``patient_labels`` per row.
        patient_labels: the source's patient ids.
        visit: int64 visit key per row (equal keys = one visit, across all patients).
        code_index: int64 index into ``code_dict`` per row, -1 where the code is missing.
        code_dict: the distinct raw code strings.
        sex: int8 per row: 0/1, :data:`SEX_MISSING` or :data:`SEX_UNKNOWN`.
        age: float64 per row in years, NaN where missing.
        order: per-row key ordering a patient's visits (time or number), or None (source order).
        time: ``datetime64[s]`` per row, or None.
        bad_age: rows whose age was present but not a number.
        describe: row index -> one line naming file, line and values (for examples).
        icd10: rows known to be ICD-10 from a version column.
        extra_empty_count: visits the source lists with no diagnosis row at all (and examples).
    """

    patient: npt.NDArray[np.int64]
    patient_labels: npt.NDArray[Any]
    visit: npt.NDArray[np.int64]
    code_index: npt.NDArray[np.int64]
    code_dict: Sequence[str | None]
    sex: npt.NDArray[np.int8]
    age: npt.NDArray[np.float64]
    describe: Callable[[int], str]
    order: npt.NDArray[Any] | None = None
    time: npt.NDArray[np.datetime64] | None = None
    bad_age: npt.NDArray[np.bool_] | None = None
    icd10: npt.NDArray[np.bool_] | None = None
    extra_empty_count: int = 0
    extra_empty_examples: list[str] = field(default_factory=list)


def factorize(values: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """(index per value, distinct values); nulls get index -1. Uses pyarrow's hash encoding."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    enc = pc.dictionary_encode(arr)
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = enc.dictionary.to_numpy(zero_copy_only=False)
    return idx, uniques


def sorted_factorize(values: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """:func:`factorize` with the distinct values sorted (indices remapped)."""
    idx, uniques = factorize(values)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return np.where(idx >= 0, rank[np.maximum(idx, 0)], -1), uniques[order]


def row_describer(
    source: str, columns: Mapping[str, Any], lines: Any = None
) -> Callable[[int], str]:
    """A ``describe`` function printing ``source line N: col='value', ...`` for a row index."""

    def value(arr: Any, i: int) -> Any:
        v = arr[i]
        return v.as_py() if hasattr(v, "as_py") else v

    def describe(i: int) -> str:
        if lines is not None:
            where = f"{source} line {int(value(lines, i))}"
        else:
            where = f"{source} row {i}"
        vals = ", ".join(f"{k}={value(a, i)!r}" for k, a in columns.items())
        return f"{where}: {vals}"

    return describe


def classify_codes(code_dict: Sequence[str | None]) -> tuple[npt.NDArray[np.int8], list[str]]:
    """Class per distinct raw code (0 valid, 1 malformed, 2 ICD-10, 3 unknown, 4 missing)
    and the normal forms (empty string where not valid)."""
    names = {"valid": 0, "malformed": 1, "icd10": 2, "unknown": 3}
    cls = np.empty(len(code_dict), dtype=np.int8)
    norm: list[str] = []
    for i, raw in enumerate(code_dict):
        if raw is None or (isinstance(raw, str) and raw.strip(" -") == ""):
            cls[i], n = 4, None
        else:
            kind, n = icd9.classify(raw)
            cls[i] = names[kind]
        norm.append(n if cls[i] == 0 and n is not None else "")
    return cls, norm


_REASON_OF_CLASS = ("", "malformed code", "ICD-10 code", "code not in ICD-9-CM", "missing code")


def assemble(rows: LongRows, report: LoadReport, *, strict: bool = False) -> Cohort:
    """Apply the drop rules, record them in ``report`` and build the cohort."""
    n = int(rows.patient.size)
    report.rows_read = n
    reason = np.zeros(n, dtype=np.int8)  # 0 = kept; else index into `labels`
    labels: list[str] = [""]

    def mark(mask: npt.NDArray[np.bool_], name: str) -> None:
        sel = mask & (reason == 0)
        if not sel.any():
            return
        if name not in labels:
            labels.append(name)
        reason[sel] = labels.index(name)

    # --- codes: classify the distinct raw strings only ---------------------------------
    cls, norm = classify_codes(rows.code_dict)
    row_cls = np.where(rows.code_index >= 0, cls[np.maximum(rows.code_index, 0)], 4).astype(
        np.int8
    ) if cls.size else np.full(n, 4, dtype=np.int8)
    if rows.icd10 is not None:
        mark(rows.icd10, "ICD-10 code")
    for k in (4, 1, 2, 3):
        mark(row_cls == k, _REASON_OF_CLASS[k])
    # --- demographics ------------------------------------------------------------------
    mark(rows.sex == SEX_MISSING, "missing sex")
    mark(rows.sex == SEX_UNKNOWN, "unknown sex value")
    if rows.bad_age is not None:
        mark(rows.bad_age, "non-numeric age")
    age = rows.age
    mark(np.isnan(age), "missing age")
    with np.errstate(invalid="ignore"):
        mark((age < 0) | (age > MAX_AGE), "impossible age")
    # --- duplicates of a normalised code within a visit --------------------------------
    norm_dict, norm_of_class = np.unique(np.asarray(norm, dtype=object), return_inverse=True)
    # norm_dict[0] may be "" (placeholder for invalid codes); ids used only where kept.
    code_norm = (
        norm_of_class[np.maximum(rows.code_index, 0)] if len(rows.code_dict) else rows.code_index
    )
    kept = np.flatnonzero(reason == 0)
    if kept.size:
        key = rows.visit[kept] * np.int64(norm_dict.size) + code_norm[kept]
        _, first = np.unique(key, return_index=True)
        dup = np.ones(kept.size, dtype=bool)
        dup[first] = False
        dup_mask = np.zeros(n, dtype=bool)
        dup_mask[kept[dup]] = True
        mark(dup_mask, "duplicate code in a visit")
    for k, name in enumerate(labels):
        if k == 0:
            continue
        where = np.flatnonzero(reason == k)
        report.drop(name, where.size, [rows.describe(int(i)) for i in where[: report.max_examples]])
    # --- empty visits -------------------------------------------------------------------
    all_visits, first_row = np.unique(rows.visit, return_index=True)
    keep = reason == 0
    kept_visits = np.unique(rows.visit[keep])
    empty = np.setdiff1d(all_visits, kept_visits, assume_unique=True)
    if empty.size:
        ex_rows = first_row[np.searchsorted(all_visits, empty[: report.max_examples])]
        report.drop("empty visit", empty.size, [rows.describe(int(i)) for i in ex_rows])
    report.drop("empty visit", rows.extra_empty_count, rows.extra_empty_examples)
    cohort = _build(rows, keep, norm_dict, code_norm)
    report.rows_kept = cohort.n_rows
    report.patients = cohort.n_patients
    report.visits = cohort.n_visits
    log.info("%s", report.summary())
    if strict:
        report.check_strict()
    return cohort


def _build(
    rows: LongRows,
    keep: npt.NDArray[np.bool_],
    norm_dict: npt.NDArray[Any],
    code_norm: npt.NDArray[np.int64],
) -> Cohort:
    idx = np.flatnonzero(keep)
    visit_key = rows.visit[idx]
    visits, first, inv = np.unique(visit_key, return_index=True, return_inverse=True)
    vrow = idx[first]  # first kept row of each visit: its demographics
    vpatient = rows.patient[vrow]
    if rows.order is not None:
        vorder = rows.order[vrow]
        visit_rank = np.lexsort((vrow, vorder, vpatient))
    else:
        visit_rank = np.lexsort((vrow, vpatient))
    pos = np.empty_like(visit_rank)
    pos[visit_rank] = np.arange(visit_rank.size)
    row_visit = pos[inv]
    row_sort = np.lexsort((idx, row_visit))
    sorted_rows = idx[row_sort]
    visit_len = np.bincount(row_visit, minlength=visits.size)
    visit_offsets = np.zeros(visits.size + 1, dtype=np.int64)
    np.cumsum(visit_len, out=visit_offsets[1:])
    vrow_sorted = vrow[visit_rank]
    vpat_sorted = vpatient[visit_rank]
    pats, pcounts = np.unique(vpat_sorted, return_counts=True)
    patient_offsets = np.zeros(pats.size + 1, dtype=np.int64)
    np.cumsum(pcounts, out=patient_offsets[1:])
    used, local = np.unique(code_norm[sorted_rows], return_inverse=True)
    vocab = tuple(str(c) for c in norm_dict[used])
    order_vocab = np.argsort(np.asarray(vocab, dtype=object), kind="stable")
    time = None
    if rows.time is not None:
        time = rows.time[vrow_sorted].astype("datetime64[s]")
    return Cohort(
        patient_ids=np.asarray(rows.patient_labels)[pats],
        patient_offsets=patient_offsets,
        visit_offsets=visit_offsets,
        codes=np.argsort(order_vocab)[local].astype(np.int32),
        vocab=tuple(vocab[i] for i in order_vocab),
        sex=rows.sex[vrow_sorted].astype(np.int8),
        age=rows.age[vrow_sorted].astype(np.float32),
        time=time,
    )
