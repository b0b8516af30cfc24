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
        patient: integer index into ``patient_labels`` per row (int32 or int64).
        patient_labels: the source's patient ids.
        visit: integer visit key per row (equal keys = one visit, across all patients).
        code_index: integer index into ``code_dict`` per row, -1 where the code is missing.
        code_dict: the distinct raw code strings.
        sex: int8 per row: 0/1, :data:`SEX_MISSING` or :data:`SEX_UNKNOWN`.
        age: float32 or float64 per row in years, NaN where missing.
        order: per-row key ordering a patient's visits (time or number), or None (source order).
        time: ``datetime64[s]`` per row, or None.
        bad_age: rows whose age was present but not a number.
        describe: row index -> one line naming file, line and values (for examples).
        icd10: rows known to be ICD-10 from a version column.
        extra_empty_count: visits the source lists with no diagnosis row at all (and examples).
    """

    patient: npt.NDArray[np.integer[Any]]
    patient_labels: npt.NDArray[Any]
    visit: npt.NDArray[np.integer[Any]]
    code_index: npt.NDArray[np.integer[Any]]
    code_dict: Sequence[str | None]
    sex: npt.NDArray[np.int8]
    age: npt.NDArray[np.floating[Any]]
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


def _lut(values: npt.NDArray[Any], missing: Any) -> npt.NDArray[Any]:
    """``values`` with ``missing`` appended, so that index -1 (a null) looks up ``missing``."""
    return np.append(values, np.asarray([missing], dtype=values.dtype))


def _small_index(idx: npt.NDArray[np.integer[Any]], bound: int) -> npt.NDArray[Any]:
    """``idx`` as int32 when every value is below ``bound`` < 2**31 (halves the memory)."""
    return idx.astype(np.int32, copy=False) if bound < 2**31 else idx


_CHUNK = 1 << 20


def rank_values(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(rank of each value among the sorted distinct values, the sorted distinct values).

    No hashing (arrow's hash of integer ids was slow and erratic): already-sorted values take
    one pass, integers of a small range a lookup table, anything else a stable sort. Ranks are
    int32 when they fit.
    """
    n = int(values.size)
    rank_type = np.int32 if n < 2**31 else np.int64
    if n == 0:
        return np.zeros(0, dtype=np.int32), values[:0]
    if bool((values[1:] >= values[:-1]).all()):
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(values[1:], values[:-1], out=change[1:])
        distinct = values[change]
        ranks = np.cumsum(change, dtype=rank_type)
        ranks -= 1
        return ranks, distinct
    if values.dtype.kind in "iu":
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < max(4 * n, 1 << 16):
            seen = np.zeros(hi - lo + 1, dtype=bool)
            for start in range(0, n, _CHUNK):
                seen[values[start : start + _CHUNK] - lo] = True
            lut = np.cumsum(seen, dtype=rank_type) - 1
            ranks = np.empty(n, dtype=rank_type)
            for start in range(0, n, _CHUNK):
                ranks[start : start + _CHUNK] = lut[values[start : start + _CHUNK] - lo]
            return ranks, (np.flatnonzero(seen) + lo).astype(values.dtype)
    perm = _small_index(np.argsort(values, kind="stable"), n)
    sv = values[perm]
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(sv[1:], sv[:-1], out=change[1:])
    distinct = sv[change]
    del sv
    ranks = np.cumsum(change, dtype=rank_type)
    ranks -= 1
    del change
    out = np.empty_like(ranks)
    out[perm] = ranks
    return out, distinct


def dense_keys(keys: npt.NDArray[np.integer[Any]]) -> tuple[npt.NDArray[Any], int]:
    """(keys as ids ``0..k-1``, k): kept as they are when already small and non-negative,
    else replaced by their ranks."""
    n = int(keys.size)
    if n == 0:
        return keys, 0
    lo, hi = int(keys.min()), int(keys.max())
    if lo >= 0 and hi < 2 * n + 1024:
        return _small_index(keys, hi + 1), hi + 1
    ranks, distinct = rank_values(keys)
    return ranks, int(distinct.size)


def repeated_pairs(
    first: npt.NDArray[np.integer[Any]],
    second: npt.NDArray[np.integer[Any]],
    n_second: int,
    where: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_]:
    """Mask of the rows whose (first, second) pair occurred on an earlier row, among the rows
    selected by ``where`` (all rows when None; unselected rows are never marked).

    One stable sort of the combined int64 key (equal keys keep row order, so all but the
    first of each are repeats); nearly linear when rows come grouped by ``first``. Memory: the
    key and the permutation of the selected rows (16 bytes per row), built and compared in
    slices.
    """
    n = int(first.size)
    out = np.zeros(n, dtype=bool)
    mult = np.int64(max(n_second, 1))
    n_sel = n if where is None else int(np.count_nonzero(where))
    if n_sel < 2:
        return out
    key = np.empty(n_sel, dtype=np.int64)
    pos = 0
    for start in range(0, n, _CHUNK):
        f, s = first[start : start + _CHUNK], second[start : start + _CHUNK]
        if where is not None:
            m = where[start : start + _CHUNK]
            f, s = f[m], s[m]
        part = key[pos : pos + f.size]
        np.multiply(f, mult, out=part)
        part += s
        pos += f.size
    perm = np.argsort(key, kind="stable")
    sel = np.zeros(n_sel, dtype=bool)
    for start in range(0, n_sel - 1, _CHUNK):
        idx = perm[start : start + _CHUNK + 1]
        k = key[idx]
        sel[idx[1:][k[1:] == k[:-1]]] = True
    del key, perm
    if where is None:
        return sel
    out[where] = sel
    return out


def assemble(rows: LongRows, report: LoadReport, *, strict: bool = False) -> Cohort:
    """Apply the drop rules, record them in ``report`` and build the cohort.

    Memory: a few bytes per row beyond the inputs (int8 reasons, int32 ids, boolean masks);
    grouping uses hashing and one stable sort of the kept rows by visit.
    """
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
    row_cls = _lut(cls, 4)[rows.code_index]  # index -1 (missing) -> class 4
    if rows.icd10 is not None:
        mark(rows.icd10, "ICD-10 code")
    for k in (4, 1, 2, 3):
        mark(row_cls == k, _REASON_OF_CLASS[k])
    del row_cls
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
    # norm_dict is sorted; it may hold "" (placeholder for invalid codes, never kept).
    norm_dict, norm_of_class = np.unique(np.asarray(norm, dtype=object), return_inverse=True)
    code_norm = _lut(norm_of_class.astype(np.int32), 0)[rows.code_index]
    if norm_dict.size < 2**15:
        code_norm = code_norm.astype(np.int16)
    visit, n_visit_ids = dense_keys(rows.visit)
    keep = reason == 0
    if keep.any():
        dup_mask = repeated_pairs(visit, code_norm, norm_dict.size, keep)
        mark(dup_mask, "duplicate code in a visit")
        del dup_mask
    for k, name in enumerate(labels):
        if k == 0:
            continue
        where = np.flatnonzero(reason == k)
        report.drop(name, where.size, [rows.describe(int(i)) for i in where[: report.max_examples]])
        del where
    # --- empty visits -------------------------------------------------------------------
    keep = reason == 0
    has_rows = np.bincount(visit, minlength=n_visit_ids) > 0
    has_kept = np.bincount(visit[keep], minlength=n_visit_ids) > 0
    empty = np.flatnonzero(has_rows & ~has_kept)
    del has_rows, has_kept
    if empty.size:
        ex_rows = [int(np.argmax(visit == v)) for v in empty[: report.max_examples]]
        report.drop("empty visit", empty.size, [rows.describe(i) for i in ex_rows])
    report.drop("empty visit", rows.extra_empty_count, rows.extra_empty_examples)
    cohort = _build(rows, keep, visit, norm_dict, code_norm)
    report.rows_kept = cohort.n_rows
    report.patients = cohort.n_patients
    report.visits = cohort.n_visits
    log.info("%s", report.summary())
    if strict:
        report.check_strict()
    return cohort


def _group_starts(sorted_keys: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Start positions of the runs of equal values in a sorted array."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.empty(sorted_keys.size, dtype=bool)
    change[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=change[1:])
    return np.flatnonzero(change)


def _build(
    rows: LongRows,
    keep: npt.NDArray[np.bool_],
    visit: npt.NDArray[Any],
    norm_dict: npt.NDArray[Any],
    code_norm: npt.NDArray[np.int32],
) -> Cohort:
    n = int(keep.size)
    kept_rows = _small_index(np.flatnonzero(keep), n)
    n_kept = int(kept_rows.size)
    # group the kept rows by visit (stable: source order inside a visit); nothing to do when
    # the source is already grouped
    vk = visit[kept_rows]
    grouped = bool((vk[1:] >= vk[:-1]).all())
    perm = None if grouped else _small_index(np.argsort(vk, kind="stable"), n_kept)
    if perm is not None:
        vk = vk[perm]
    starts = _group_starts(vk)
    del vk
    lengths = np.diff(np.append(starts, n_kept))
    vrow = kept_rows[starts if perm is None else perm[starts]]  # first kept row of each visit
    vpatient = rows.patient[vrow]
    if rows.order is not None:
        visit_rank = np.lexsort((vrow, rows.order[vrow], vpatient))
    else:
        visit_rank = np.lexsort((vrow, vpatient))
    new_len = lengths[visit_rank]
    visit_offsets = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(new_len, out=visit_offsets[1:])
    if (np.diff(visit_rank) == 1).all():  # visits already in patient order
        final = kept_rows if perm is None else kept_rows[perm]
    else:
        shift = _small_index(starts[visit_rank] - visit_offsets[:-1], n_kept)
        gather = np.repeat(shift, new_len)
        del shift
        gather += np.arange(n_kept, dtype=gather.dtype)
        if perm is not None:
            gather = perm[gather]
        final = kept_rows[gather]
        del gather
    del perm, kept_rows
    vrow_sorted = vrow[visit_rank]
    vpat_sorted = vpatient[visit_rank]
    pstarts = _group_starts(vpat_sorted)
    pats = vpat_sorted[pstarts]
    patient_offsets = np.append(pstarts, vpat_sorted.size).astype(np.int64)
    # vocabulary: the used normal forms, in sorted order (norm_dict is sorted)
    row_norm = code_norm[final]
    del final
    used = np.flatnonzero(np.bincount(row_norm, minlength=norm_dict.size))
    local = np.full(norm_dict.size, -1, dtype=np.int32)
    local[used] = np.arange(used.size, dtype=np.int32)
    codes = local[row_norm]
    del row_norm
    time = None
    if rows.time is not None:
        time = rows.time[vrow_sorted].astype("datetime64[s]")
    return Cohort(
        patient_ids=np.asarray(rows.patient_labels)[pats],
        patient_offsets=patient_offsets,
        visit_offsets=visit_offsets,
        codes=codes,
        vocab=tuple(str(c) for c in norm_dict[used]),
        sex=rows.sex[vrow_sorted].astype(np.int8),
        age=rows.age[vrow_sorted].astype(np.float32),
        time=time,
    )
