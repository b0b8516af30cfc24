"""Where the (age, sex) of generated patients come from.

A model stores the age x sex histogram of its training patients (counts only, one-year age
bins); :class:`DemographicsDistribution` samples from it, optionally restricted to one sex or
an age range. :class:`DemographicsSource` and its kinds hand each shard its patients'
demographics reproducibly from the shard's random generator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.demographics import FEMALE, MALE, MAX_AGE, SEX_LABELS, parse_sex
from hiergen.errors import DataError

#: Number of one-year age bins (ages 0 .. MAX_AGE inclusive).
N_AGE_BINS = int(MAX_AGE) + 1

FloatArray = npt.NDArray[np.float32]
SexArray = npt.NDArray[np.int8]


@dataclass(frozen=True, eq=False)
class DemographicsDistribution:
    """Joint histogram of sex x whole years of age at the first visit.

    Attributes:
        counts: int64 ``(2, N_AGE_BINS)``; ``counts[s, a]`` patients of sex ``s`` aged
            ``a <= age < a + 1`` years.
    """

    counts: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, dtype=np.int64)
        if counts.shape != (2, N_AGE_BINS):
            raise ValueError(f"counts: shape (2, {N_AGE_BINS}) expected, got {counts.shape}")
        if (counts < 0).any():
            raise ValueError("counts: must be non-negative")
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_arrays(cls, age: npt.ArrayLike, sex: npt.ArrayLike) -> DemographicsDistribution:
        a = np.clip(np.floor(np.asarray(age, dtype=np.float64)), 0, N_AGE_BINS - 1).astype(np.int64)
        s = np.asarray(sex, dtype=np.int64)
        counts = np.zeros((2, N_AGE_BINS), dtype=np.int64)
        np.add.at(counts, (s, a), 1)
        return cls(counts)

    @classmethod
    def uniform(cls) -> DemographicsDistribution:
        """Equal sexes, ages 0-89 equally likely (used when a model carries no histogram)."""
        counts = np.zeros((2, N_AGE_BINS), dtype=np.int64)
        counts[:, :90] = 1
        return cls(counts)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, Any]:
        return {"age_bin_years": 1, "sex_labels": list(SEX_LABELS), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemographicsDistribution:
        return cls(np.asarray(data["counts"], dtype=np.int64))

    def restricted(
        self, *, sex: int | None = None, age_range: tuple[int, int] | None = None
    ) -> npt.NDArray[np.float64]:
        """Bin weights ``(2, N_AGE_BINS)`` restricted to ``sex`` and ``lo <= age < hi + 1``.

        When the training data hold nobody in the restriction, the allowed bins are weighted
        equally rather than failing.
        """
        mask = np.ones((2, N_AGE_BINS), dtype=bool)
        if sex is not None:
            mask[1 - sex] = False
        if age_range is not None:
            lo, hi = age_range
            if lo < 0 or hi < lo or hi >= N_AGE_BINS:
                raise ValueError(
                    f"age_range: expected 0 <= lo <= hi <= {N_AGE_BINS - 1}, got {lo}-{hi}"
                )
            mask[:, :lo] = False
            mask[:, hi + 1 :] = False
        w = np.where(mask, self.counts, 0).astype(np.float64)
        if w.sum() == 0:
            w = mask.astype(np.float64)
        return w

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        *,
        sex: int | None = None,
        age_range: tuple[int, int] | None = None,
    ) -> tuple[FloatArray, SexArray]:
        """``n`` (age, sex) pairs: a bin by its weight, then an age uniform inside the year."""
        w = self.restricted(sex=sex, age_range=age_range).ravel()
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        bins = np.searchsorted(cdf, rng.random(n), side="right")
        bins = np.minimum(bins, w.size - 1)
        sexes = (bins // N_AGE_BINS).astype(np.int8)
        ages = (bins % N_AGE_BINS + rng.random(n)).astype(np.float32)
        return ages, sexes


@dataclass(frozen=True, eq=False)
class DemographicsSource:
    """How a job obtains the demographics of patients ``start .. start + count``.

    Kinds:
        ``model``: sampled from the model's distribution (optionally restricted).
        ``explicit``: one given (age, sex) per patient, in order (``n`` must match).
        ``resample``: rows of a table drawn with replacement (optionally weighted).
    """

    kind: str = "model"
    sex: int | None = None
    age_range: tuple[int, int] | None = None
    age: FloatArray | None = None
    sex_codes: SexArray | None = None
    weight: npt.NDArray[np.float64] | None = None
    origin: str = ""
    _digest: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("model", "explicit", "resample"):
            raise ValueError(f"demographics: unknown kind {self.kind!r}")
        if self.kind != "model":
            if self.age is None or self.sex_codes is None or self.age.shape != self.sex_codes.shape:
                raise ValueError("demographics: age and sex arrays of one shape are required")
            if self.age.size == 0:
                raise DataError(f"demographics {self.origin or ''}: no rows")
            h = hashlib.sha256()
            h.update(np.ascontiguousarray(self.age, dtype=np.float32).tobytes())
            h.update(np.ascontiguousarray(self.sex_codes, dtype=np.int8).tobytes())
            if self.weight is not None:
                h.update(np.ascontiguousarray(self.weight, dtype=np.float64).tobytes())
            object.__setattr__(self, "_digest", h.hexdigest())

    @classmethod
    def explicit(cls, age: npt.ArrayLike, sex: npt.ArrayLike) -> DemographicsSource:
        a = np.atleast_1d(np.asarray(age, dtype=np.float32))
        s = sex_codes(sex)
        if a.shape != s.shape:
            a, s = np.broadcast_arrays(a, s)
            a, s = a.copy(), s.copy()
        _check_ages(a, "age")
        _check_sexes(s, "sex")
        return cls("explicit", age=a, sex_codes=s)

    def describe(self) -> dict[str, Any]:
        """JSON description stored in the job manifest (a resume must match it)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "model":
            out["sex"] = None if self.sex is None else SEX_LABELS[self.sex]
            out["age_range"] = None if self.age_range is None else list(self.age_range)
        else:
            out["rows"] = int(self.age.size) if self.age is not None else 0
            out["sha256"] = self._digest
            out["origin"] = self.origin
        return out

    def draw(
        self,
        start: int,
        count: int,
        rng: np.random.Generator,
        distribution: DemographicsDistribution,
    ) -> tuple[FloatArray, SexArray]:
        """Demographics of patients ``start .. start + count`` of the job."""
        if self.kind == "model":
            return distribution.sample(count, rng, sex=self.sex, age_range=self.age_range)
        assert self.age is not None and self.sex_codes is not None
        if self.kind == "explicit":
            if start + count > self.age.size:
                raise ValueError(
                    f"demographics: {self.age.size} patients given, asked for {start + count}"
                )
            return self.age[start : start + count], self.sex_codes[start : start + count]
        p = None
        if self.weight is not None:
            p = self.weight / self.weight.sum()
        rows = rng.choice(self.age.size, size=count, replace=True, p=p)
        return self.age[rows], self.sex_codes[rows]


def sex_codes(sex: npt.ArrayLike, *, argument: str = "sex") -> SexArray:
    """Sex codes from ``M``/``F`` strings or 0/1 integers (scalar or sequence)."""
    arr = np.atleast_1d(np.asarray(sex))
    if arr.dtype.kind in "iub":
        codes = arr.astype(np.int8)
        _check_sexes(codes, argument)
        return codes
    # Strings: parse_sex reads "1"/"2" as the NHDS coding, so numbers are handled above.
    try:
        parsed = [parse_sex(str(v), argument=argument) for v in arr.tolist()]
        return np.asarray(parsed, dtype=np.int8)
    except ValueError as exc:
        raise DataError(str(exc)) from exc


def _check_ages(a: npt.NDArray[Any], where: str) -> None:
    bad = ~np.isfinite(a) | (a < 0) | (a > MAX_AGE)
    if bad.any():
        raise DataError(f"{where}: impossible age {float(a[bad][0])!r} (expected 0-{MAX_AGE:g})")


def _check_sexes(s: npt.NDArray[Any], where: str) -> None:
    bad = (s != MALE) & (s != FEMALE)
    if bad.any():
        raise DataError(f"{where}: unknown sex code {int(s[bad][0])} (expected 0 = M, 1 = F)")


def read_demographics_file(path: str | Path, *, resample: bool) -> DemographicsSource:
    """Read a CSV or Parquet table with columns ``age`` and ``sex`` (``M``/``F`` or 0/1) and
    an optional ``weight``.

    With ``resample`` rows are drawn with replacement (weighted when ``weight`` is present);
    otherwise each row is one patient, in order.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise DataError(f"demographics file {p}: not found")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            table = pq.read_table(p)
        else:
            table = pacsv.read_csv(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"demographics file {p}: cannot be read ({exc})") from exc
    names = {c.lower(): c for c in table.column_names}
    for col in ("age", "sex"):
        if col not in names:
            raise DataError(
                f"demographics file {p}: column {col!r} missing (has {table.column_names})"
            )
    try:
        age = np.asarray(table[names["age"]].to_numpy(zero_copy_only=False), dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise DataError(f"demographics file {p}, column 'age': not numeric ({exc})") from exc
    _check_ages(age, f"demographics file {p}, column 'age'")
    sex = sex_codes(
        table[names["sex"]].to_numpy(zero_copy_only=False),
        argument=f"demographics file {p}, column 'sex'",
    )
    weight = None
    if "weight" in names:
        weight = np.asarray(table[names["weight"]].to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.isfinite(weight).all() or (weight < 0).any() or weight.sum() <= 0:
            raise DataError(f"demographics file {p}, column 'weight': must be >= 0, not all 0")
    return DemographicsSource(
        "resample" if resample else "explicit",
        age=age,
        sex_codes=sex,
        weight=weight if resample else None,
        origin=p.name,
    )


def parse_age_range(text: str) -> tuple[int, int]:
    """``"40-60"`` -> ``(40, 60)`` (aged 40 to 60 years inclusive); ``"65"`` -> ``(65, 65)``."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            lo = hi = int(parts[0])
        elif len(parts) == 2:
            lo, hi = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--age-range: expected LO-HI in whole years such as 40-60, got {text!r}"
        ) from None
    if lo < 0 or hi < lo or hi >= N_AGE_BINS:
        raise ValueError(f"--age-range: expected 0 <= LO <= HI <= {N_AGE_BINS - 1}, got {text!r}")
    return lo, hi
