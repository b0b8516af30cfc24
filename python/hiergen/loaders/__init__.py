"""Loaders for real EHR formats: each returns a :class:`~hiergen.cohort.Cohort` and a
:class:`LoadReport` saying what was read, kept and dropped (by reason, with example rows).

``load(path, format=...)`` dispatches by name; ``strict=True`` turns any drop into a
:class:`~hiergen.errors.DataError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hiergen.cohort import Cohort
from hiergen.loaders.meds import load_meds
from hiergen.loaders.mimic3 import load_mimic3
from hiergen.loaders.mimic4 import load_mimic4
from hiergen.loaders.nhds import load_nhds
from hiergen.loaders.report import LoadReport
from hiergen.loaders.synpuf import load_synpuf
from hiergen.loaders.table import load_table

LOADERS: dict[str, tuple[Callable[..., tuple[Cohort, LoadReport]], str]] = {
    "nhds": (load_nhds, "NHDS public-use fixed-width file (bz2, gzip or plain)"),
    "mimic3": (load_mimic3, "MIMIC-III directory: DIAGNOSES_ICD, ADMISSIONS, PATIENTS"),
    "mimic4": (load_mimic4, "MIMIC-IV hosp/: diagnoses_icd, admissions, patients"),
    "meds": (load_meds, "MEDS dataset: data/**/*.parquet with subject_id, time, code"),
    "table": (load_table, "long table, CSV or Parquet: patient, visit or time, code, age, sex"),
    "synpuf": (load_synpuf, "CMS DE-SynPUF beneficiary summary + inpatient claims"),
}


def load(
    path: str | Path, *, format: str, strict: bool = False, **options: Any
) -> tuple[Cohort, LoadReport]:
    """Load ``path`` with the loader plugin named ``format`` (built-ins: :data:`LOADERS`).

    Unknown formats raise :class:`~hiergen.errors.PluginError` listing the installed loaders.
    """
    from hiergen.plugins.registry import get

    fn = get("loaders", format).load
    try:
        return fn(path, strict=strict, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ValueError(f"format {format!r}: {exc}") from None
        raise


__all__ = [
    "LOADERS",
    "LoadReport",
    "load",
    "load_meds",
    "load_mimic3",
    "load_mimic4",
    "load_nhds",
    "load_synpuf",
    "load_table",
]
