"""Reading the cohorts to evaluate: real data through :func:`hiergen.loaders.load`, and the
output of ``hiergen generate`` (a MEDS directory, or a flat table directory of Parquet/CSV
parts), with the format guessed when not given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from hiergen.cohort import Cohort
from hiergen.errors import DataError

logger = logging.getLogger(__name__)

#: Formats besides those of :data:`hiergen.loaders.LOADERS`: ``flat`` is a directory (or file)
#: of the flat long table ``hiergen generate`` writes (patient_id, visit_index, ...).
EXTRA_FORMATS = ("auto", "flat")
FLAT_COLUMNS = ("patient_id", "visit_index", "code", "age", "sex")


def loader_formats() -> list[str]:
    from hiergen.loaders import LOADERS

    return sorted(set(LOADERS) | set(EXTRA_FORMATS))


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        return [c.lower() for c in pq.read_schema(path).names]
    with path.open("rb") as fh:
        head = fh.readline().decode("utf-8", "replace")
    return [c.strip().strip('"').lower() for c in head.replace(";", ",").split(",")]


def _data_files(path: Path) -> list[Path]:
    base = path / "data" if (path / "data").is_dir() else path
    files = sorted(base.rglob("*.parquet")) or sorted(base.rglob("*.csv"))
    return files


def guess_format(path: Path) -> str:
    """The loader name that fits ``path`` (``DataError`` when none does)."""
    if path.is_dir():
        if (path / "DIAGNOSES_ICD.csv").exists() or (path / "DIAGNOSES_ICD.csv.gz").exists():
            return "mimic3"
        if (path / "hosp").is_dir():
            return "mimic4"
        files = _data_files(path)
        if not files:
            raise DataError(f"{path}: no Parquet or CSV data files found to evaluate")
        cols = _columns(files[0])
        if "subject_id" in cols and "code" in cols:
            return "meds"
        if all(c in cols for c in FLAT_COLUMNS):
            return "flat"
        raise DataError(
            f"{files[0]}: columns {cols} fit neither MEDS (subject_id, time, code) nor the "
            f"flat table ({', '.join(FLAT_COLUMNS)})",
            hint="give --real-format/--synthetic-format",
        )
    name = path.name.lower()
    if name.startswith("nhds") or name.endswith((".bz2", ".txt")):
        return "nhds"
    if name.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        cols = _columns(path) if not name.endswith(".gz") else []
        return "flat" if all(c in cols for c in FLAT_COLUMNS) else "table"
    raise DataError(f"{path}: cannot guess the data format", hint="give the format explicitly")


def read_cohort(path: str | Path, format: str = "auto", **options: Any) -> Cohort:
    """Load ``path`` as a cohort; ``format`` is a loader name, ``flat`` or ``auto``."""
    from hiergen.loaders import load

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    fmt = guess_format(p) if format == "auto" else format
    logger.info("reading %s as %s", p, fmt)
    if fmt == "flat":
        files = _data_files(p) if p.is_dir() else [p]
        if not files:
            raise DataError(f"{p}: no flat table files (data/*.parquet or data/*.csv)")
        parts = [
            load(f, format="table", visit="visit_index", **options)[0] for f in files
        ]
        return concat(parts)
    cohort, report = load(p, format=fmt, **options)
    logger.info("%s: %s", p, report)
    return cohort


def concat(cohorts: Sequence[Cohort]) -> Cohort:
    """One cohort holding the patients of all ``cohorts`` in order (vocabularies merged)."""
    if not cohorts:
        raise ValueError("cohorts: nothing to concatenate")
    if len(cohorts) == 1:
        return cohorts[0]
    vocab: dict[str, int] = {}
    codes = []
    for c in cohorts:
        remap = np.fromiter(
            (vocab.setdefault(code, len(vocab)) for code in c.vocab), dtype=np.int32,
            count=len(c.vocab),
        )
        codes.append(remap[c.codes])

    def offsets(arrays: list[np.ndarray]) -> np.ndarray:
        lengths = np.concatenate([np.diff(a) for a in arrays])
        out = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=out[1:])
        return out

    times = [c.time for c in cohorts]
    return Cohort(
        patient_ids=np.concatenate([c.patient_ids for c in cohorts]),
        patient_offsets=offsets([c.patient_offsets for c in cohorts]),
        visit_offsets=offsets([c.visit_offsets for c in cohorts]),
        codes=np.concatenate(codes).astype(np.int32),
        vocab=tuple(vocab),
        sex=np.concatenate([c.sex for c in cohorts]),
        age=np.concatenate([c.age for c in cohorts]),
        time=None if any(t is None for t in times) else np.concatenate(times),  # type: ignore[arg-type]
    )


__all__ = ["concat", "guess_format", "loader_formats", "read_cohort"]
