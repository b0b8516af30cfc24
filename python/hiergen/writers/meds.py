"""MEDS output (Medical Event Data Standard, schema of the ``meds`` package 0.4).

Layout::

    data/shard-<i>.parquet     subject_id (int64), time (timestamp[us]), code (string)
    metadata/dataset.json      dataset and ETL names and versions (no creation time, so that a
                               job's files depend only on its seed)
    metadata/codes.parquet     code, description, parent_codes for every code that can occur

Each subject lives in exactly one shard, its rows contiguous and sorted by time: a static
sex row (``GENDER//M``, null time), the birth row (``MEDS_BIRTH``), then the codes of each
visit (``ICD9CM/401.9``, prefix configurable). Synthetic patients have ages, not dates: the
first visit of each subject falls on a day of the year starting at ``start_date`` (spread
by subject id), the other visits follow at their generated ages, and birth is the first
visit minus the age.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hiergen.demographics import SEX_LABELS
from hiergen.writers.base import WrittenFile, write_atomic, write_parquet

if TYPE_CHECKING:
    import pyarrow as pa

    from hiergen.generation.patients import GeneratedPatients
    from hiergen.hierarchy import Hierarchy

DATA_DIR = "data"
METADATA_DIR = "metadata"
BIRTH_CODE = "MEDS_BIRTH"
#: The MEDS schema version these files follow.
MEDS_VERSION = "0.4.1"
_US_PER_DAY = 86_400 * 1_000_000
_DAYS_PER_YEAR = 365.25


class MedsWriter:
    """Writes a MEDS data set, one Parquet file per shard."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        model: Any = None,
        code_prefix: str = "ICD9CM/",
        sex_code_prefix: str = "GENDER//",
        start_date: str | dt.date = "2010-01-01",
        dataset_name: str = "hiergen-synthetic",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.model = model
        self.code_prefix = code_prefix
        self.sex_code_prefix = sex_code_prefix
        try:
            start = start_date if isinstance(start_date, dt.date) else dt.date.fromisoformat(
                str(start_date)
            )
        except ValueError as exc:
            raise ValueError(f"start_date: expected YYYY-MM-DD, got {start_date!r}") from exc
        self.start_day = (start - dt.date(1970, 1, 1)).days
        self.dataset_name = dataset_name
        self._dictionary: pa.Array | None = None
        self._hierarchy: Hierarchy | None = None

    # --- layout ---------------------------------------------------------------------------
    def shard_files(self, index: int) -> list[str]:
        return [f"{DATA_DIR}/shard-{index:05d}.parquet"]

    def owned_paths(self) -> list[str]:
        return [DATA_DIR, METADATA_DIR]

    @property
    def static_codes(self) -> list[str]:
        return [self.sex_code_prefix + s for s in SEX_LABELS] + [BIRTH_CODE]

    def _code_dictionary(self, hierarchy: Hierarchy) -> pa.Array:
        import pyarrow as pa

        if self._dictionary is None or self._hierarchy is not hierarchy:
            strings = self.static_codes + [self.code_prefix + c for c in hierarchy.codes]
            self._dictionary = pa.array(strings, pa.string())
            self._hierarchy = hierarchy
        return self._dictionary

    # --- data -----------------------------------------------------------------------------
    def table(self, batch: GeneratedPatients, *, dictionary: bool = False) -> pa.Table:
        """The MEDS rows of a batch, sorted by subject and time.

        With ``dictionary`` the ``code`` column is dictionary-encoded (what the writer
        stores: Parquet keeps it as a plain string column, read back as ``string``).
        """
        import pyarrow as pa

        s1 = batch.stage1
        n = batch.n_patients
        po = np.asarray(s1.patient_offsets, dtype=np.int64)
        vo = np.asarray(s1.visit_offsets, dtype=np.int64)
        ids = batch.patient_ids
        codes_per_patient = vo[po[1:]] - vo[po[:-1]]
        rows_per_patient = codes_per_patient + 2
        row_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(rows_per_patient, out=row_start[1:])
        n_rows = int(row_start[-1])

        visit_days, birth_days = self._days(batch, ids, po)
        code_visit = np.repeat(np.arange(batch.n_visits, dtype=np.int64), np.diff(vo))
        code_patient = batch.visit_patient[code_visit]
        code_rows = np.arange(batch.n_rows, dtype=np.int64) + 2 * (code_patient + 1)

        n_static = len(self.static_codes)
        code_index = np.empty(n_rows, dtype=np.int32)
        code_index[row_start[:-1]] = s1.sex.astype(np.int32)
        code_index[row_start[:-1] + 1] = n_static - 1
        code_index[code_rows] = batch.codes.astype(np.int32) + n_static

        time_us = np.zeros(n_rows, dtype=np.int64)
        time_us[row_start[:-1] + 1] = birth_days * _US_PER_DAY
        time_us[code_rows] = visit_days[code_visit] * _US_PER_DAY
        null_time = np.zeros(n_rows, dtype=bool)
        null_time[row_start[:-1]] = True

        strings = self._code_dictionary(batch.hierarchy)
        indices = pa.array(code_index, pa.int32())
        code = (
            pa.DictionaryArray.from_arrays(indices, strings) if dictionary
            else strings.take(indices)
        )
        schema = meds_data_schema()
        if dictionary:
            schema = schema.set(2, pa.field("code", code.type, nullable=False))
        return pa.table(
            {
                "subject_id": pa.array(np.repeat(ids, rows_per_patient), pa.int64()),
                "time": pa.array(time_us, pa.timestamp("us"), mask=null_time),
                "code": code,
            },
            schema=schema,
        )

    def _days(
        self, batch: GeneratedPatients, ids: npt.NDArray[np.int64], po: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Day numbers (since 1970-01-01) of every visit and of every birth."""
        s1 = batch.stage1
        visit_age = np.asarray(s1.visit_age, dtype=np.float64)
        n_vis = np.diff(po)
        first_age = np.asarray(s1.age, dtype=np.float64).copy()
        with_visits = np.flatnonzero(n_vis > 0)
        first_age[with_visits] = visit_age[po[with_visits]]
        # First visit: a day of the year spread by a multiplicative hash of the subject id.
        spread = ((ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(1 << 32)) % 365
        anchor = self.start_day + spread.astype(np.int64)
        rel = np.rint((visit_age - np.repeat(first_age, n_vis)) * _DAYS_PER_YEAR).astype(np.int64)
        # Visits never go back in time within a subject.
        offset = np.repeat(np.arange(batch.n_patients, dtype=np.int64) * (1 << 40), n_vis)
        rel = np.maximum.accumulate(np.maximum(rel, 0) + offset) - offset if rel.size else rel
        visit_days = np.repeat(anchor, n_vis) + rel
        birth_days = anchor - np.rint(first_age * _DAYS_PER_YEAR).astype(np.int64)
        return visit_days, birth_days

    def write_shard(self, index: int, batch: GeneratedPatients) -> list[WrittenFile]:
        # Dictionary codes are written without hashing every string; without the stored
        # Arrow schema the column reads back as the plain ``string`` MEDS requires.
        table = self.table(batch, dictionary=True)
        return [write_atomic(self.out_dir, self.shard_files(index)[0],
                             lambda p: write_parquet(table, p, store_schema=False))]

    # --- metadata -------------------------------------------------------------------------
    def dataset_metadata(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        from hiergen import __version__

        job = manifest.get("job", {})
        model_hash = str(job.get("model_hash", ""))[:12]
        return {
            "dataset_name": self.dataset_name,
            "dataset_version": f"n={job.get('n')};seed={job.get('seed')};model={model_hash}",
            "etl_name": "hiergen",
            "etl_version": __version__,
            "meds_version": MEDS_VERSION,
        }

    def codes_table(self, hierarchy: Hierarchy) -> pa.Table:
        import pyarrow as pa

        titles = _titles()
        codes = self.static_codes + [self.code_prefix + c for c in hierarchy.codes]
        descriptions: list[str | None] = [f"sex {s}" for s in SEX_LABELS]
        descriptions.append("birth")
        descriptions += [titles.get(c) for c in hierarchy.codes]
        parents: list[list[str] | None] = [None] * len(self.static_codes)
        cat_of = hierarchy.code_category
        labels = hierarchy.parent_labels
        for i in range(hierarchy.n_codes):
            cat = labels[int(cat_of[i])]
            parent = self.code_prefix + cat
            parents.append([parent] if parent != codes[len(self.static_codes) + i] else [])
        return pa.table(
            {
                "code": pa.array(codes, pa.string()),
                "description": pa.array(descriptions, pa.string()),
                "parent_codes": pa.array(parents, pa.list_(pa.string())),
            }
        )

    def finalize(self, manifest: Mapping[str, Any]) -> list[WrittenFile]:
        out: list[WrittenFile] = []
        text = json.dumps(self.dataset_metadata(manifest), indent=2, sort_keys=True) + "\n"

        def _json(path: Path) -> None:
            path.write_text(text, encoding="utf-8")

        out.append(write_atomic(self.out_dir, f"{METADATA_DIR}/dataset.json", _json))
        if self.model is not None:
            table = self.codes_table(self.model.hierarchy)
            out.append(write_atomic(self.out_dir, f"{METADATA_DIR}/codes.parquet",
                                    lambda p: write_parquet(table, p)))
        return out


def meds_data_schema() -> pa.Schema:
    """The MEDS data schema's mandatory columns (as in ``meds.DataSchema``)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("subject_id", pa.int64(), nullable=False),
            pa.field("time", pa.timestamp("us"), nullable=True),
            pa.field("code", pa.string(), nullable=False),
        ]
    )


def _titles() -> dict[str, str]:
    try:
        from hiergen.icd9 import v32_titles
    except ImportError:  # pragma: no cover - icd9 is part of hiergen
        return {}
    return dict(v32_titles())
