"""Save a :class:`~hiergen.cohort.Cohort` to Parquet and load it back.

One row per visit, in order: ``patient`` (index), ``patient_id``, ``sex``, ``age``, ``time``
(where known) and ``codes`` (list of dotted code strings). The vocabulary order and the
format version are kept in the schema metadata, so ids round-trip exactly; the file is also
readable by any Parquet tool.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hiergen.cohort import Cohort
from hiergen.errors import DataError

FORMAT = "hiergen-cohort"
VERSION = 1
_META_KEY = b"hiergen"


def save_parquet(cohort: Cohort, path: str | Path) -> Path:
    """Write ``cohort`` to ``path`` (one row per visit; zstd-compressed)."""
    path = Path(path)
    vp = cohort.visit_patient
    vocab = pa.array(cohort.vocab, type=pa.string())
    codes = pa.ListArray.from_arrays(
        pa.array(cohort.visit_offsets.astype(np.int32)),
        pa.DictionaryArray.from_arrays(pa.array(cohort.codes, type=pa.int32()), vocab).cast(
            pa.string()
        ),
    )
    columns = {
        "patient": pa.array(vp, type=pa.int64()),
        "patient_id": pa.array(np.asarray(cohort.patient_ids)[vp]),
        "sex": pa.array(cohort.sex, type=pa.int8()),
        "age": pa.array(cohort.age, type=pa.float32()),
    }
    if cohort.time is not None:
        columns["time"] = pa.array(cohort.time.astype("datetime64[s]"))
    columns["codes"] = codes
    empty = np.flatnonzero(cohort.visits_per_patient == 0)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "n_patients": cohort.n_patients,
        "vocab": list(cohort.vocab),
        "empty_patients": [[int(i), _py(cohort.patient_ids[i])] for i in empty],
    }
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path, compression="zstd")
    return path


def _py(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def load_parquet(path: str | Path) -> Cohort:
    """Read a cohort written by :func:`save_parquet`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"cohort: file {path} does not exist")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cohort: cannot read Parquet file {path}: {exc}") from exc
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise DataError(f"cohort: {path} is not a hiergen cohort file (no 'hiergen' metadata)")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT or int(meta.get("version", 0)) > VERSION:
        raise DataError(f"cohort: {path} has unsupported format {meta.get('format')!r} "
                        f"version {meta.get('version')!r}")
    vocab = tuple(meta["vocab"])
    lists = table.column("codes").combine_chunks()
    flat = lists.flatten()
    ids = pc.index_in(flat, value_set=pa.array(vocab, type=pa.string()))
    if ids.null_count:
        raise DataError(f"cohort: {path} column 'codes' holds a code missing from the vocabulary")
    visit_offsets = lists.offsets.to_numpy().astype(np.int64) - int(lists.offsets[0].as_py())
    vp = table.column("patient").to_numpy().astype(np.int64)
    pid_per_visit = table.column("patient_id").to_numpy(zero_copy_only=False)
    n_patients = int(meta["n_patients"])
    counts = np.bincount(vp, minlength=n_patients)
    patient_offsets = np.zeros(n_patients + 1, dtype=np.int64)
    np.cumsum(counts, out=patient_offsets[1:])
    first = patient_offsets[:-1][counts > 0]
    patient_ids = np.empty(n_patients, dtype=pid_per_visit.dtype if not meta["empty_patients"]
                           else object)
    patient_ids[counts > 0] = pid_per_visit[first]
    for i, pid in meta["empty_patients"]:
        patient_ids[i] = pid
    time = None
    if "time" in table.column_names:
        time = table.column("time").to_numpy(zero_copy_only=False).astype("datetime64[s]")
    return Cohort(
        patient_ids=patient_ids,
        patient_offsets=patient_offsets,
        visit_offsets=visit_offsets,
        codes=ids.to_numpy(zero_copy_only=False).astype(np.int32),
        vocab=vocab,
        sex=table.column("sex").to_numpy().astype(np.int8),
        age=table.column("age").to_numpy().astype(np.float32),
        time=time,
    )
