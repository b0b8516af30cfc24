"""Array helpers shared by the weighting strategies: counts, per-category blocks, parameters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.hierarchy import Hierarchy

FloatArray = npt.NDArray[np.float64]


def require_cohort(cohort: Cohort | None, strategy: str) -> Cohort:
    """The cohort, or ``ValueError`` when a strategy that learns from data got none."""
    if cohort is None:
        raise ValueError(f"weighting {strategy!r}: needs a training cohort, got cohort=None")
    return cohort


def row_code_ids(hierarchy: Hierarchy, cohort: Cohort) -> npt.NDArray[np.int32]:
    """Code id (in ``hierarchy``) of every diagnosis row of ``cohort``."""
    try:
        return cohort.code_ids_in(hierarchy)
    except KeyError as exc:
        raise DataError(
            f"cohort: {exc.args[0] if exc.args else exc}",
            hint="build the hierarchy from the training cohort's codes "
            "(Hierarchy.from_codes(cohort.vocab))",
        ) from None


def code_counts(hierarchy: Hierarchy, cohort: Cohort) -> FloatArray:
    """Number of visits holding each code of ``hierarchy`` (float64, ``n_codes``)."""
    ids = row_code_ids(hierarchy, cohort)
    return np.bincount(ids, minlength=hierarchy.n_codes).astype(np.float64)


def block_sums(weights: FloatArray, offsets: npt.NDArray[np.int64]) -> FloatArray:
    """Sum of each category block along the last axis: ``(..., n_codes) -> (..., n_cat)``."""
    return np.add.reduceat(weights, offsets[:-1], axis=-1)


def normalise_blocks(weights: FloatArray, offsets: npt.NDArray[np.int64]) -> FloatArray:
    """Scale each category block to sum to 1; an all-zero block becomes uniform."""
    w = np.array(weights, dtype=np.float64, copy=True)
    sizes = np.diff(offsets)
    totals = np.repeat(block_sums(w, offsets), sizes, axis=-1)
    uniform = np.broadcast_to(np.repeat(1.0 / sizes, sizes), w.shape)
    return np.where(totals > 0, w / np.where(totals > 0, totals, 1.0), uniform)


def as_rows(weights: FloatArray) -> FloatArray:
    """A 1-D table as one row ``(1, n_codes)``; 2-D tables unchanged."""
    w = np.asarray(weights, dtype=np.float64)
    return w.reshape(1, -1) if w.ndim == 1 else w


def nonneg_float(strategy: str, name: str, value: Any) -> float:
    """``value`` as a finite float >= 0, or ``ValueError`` naming the strategy and parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ValueError(
            f"weighting {strategy!r}: parameter {name} must be a finite number >= 0, got {value!r}"
        )
    return number


def nonneg_int(strategy: str, name: str, value: Any) -> int:
    """``value`` as an int >= 0, or ``ValueError`` naming the strategy and parameter."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
    if not ok:
        raise ValueError(
            f"weighting {strategy!r}: parameter {name} must be an integer >= 0, got {value!r}"
        )
    return int(value)
