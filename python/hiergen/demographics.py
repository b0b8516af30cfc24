"""Sex and age encodings shared by every stage.

Sex is an integer code per visit: ``0`` = male, ``1`` = female (the ``x_cat=[0]`` of the design
page is a man). Age is in years as a float (a newborn of 3 days is ``3/365``). Strata are
sex x age band, numbered ``sex * N_AGE_BANDS + band``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

MALE: Final = 0
FEMALE: Final = 1
SEX_LABELS: Final = ("M", "F")

_SEX_ALIASES: Final = {
    "m": MALE, "male": MALE, "1": MALE, "man": MALE,
    "f": FEMALE, "female": FEMALE, "2": FEMALE, "woman": FEMALE,
}

#: Lower edges of the age bands, in years: <1, 1-17, 18-39, 40-64, 65-79, 80+.
AGE_BAND_EDGES: Final = (0.0, 1.0, 18.0, 40.0, 65.0, 80.0)
AGE_BAND_LABELS: Final = ("0", "1-17", "18-39", "40-64", "65-79", "80+")
N_AGE_BANDS: Final = len(AGE_BAND_EDGES)
N_STRATA: Final = 2 * N_AGE_BANDS
MAX_AGE: Final = 125.0


def parse_sex(value: str | int, *, argument: str = "sex") -> int:
    """Map ``M``/``F`` (and common spellings) to the sex code; ``ValueError`` otherwise."""
    key = str(value).strip().lower()
    if key in _SEX_ALIASES:
        return _SEX_ALIASES[key]
    if isinstance(value, (int, np.integer)) and int(value) in (MALE, FEMALE):
        return int(value)
    raise ValueError(f"{argument}: unknown sex value {value!r}; expected M or F")


def age_band(age: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Age band index of each age in years (negative ages raise ``ValueError``)."""
    a = np.asarray(age)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    impossible = ~(a >= 0)  # NaN too
    if impossible.any():
        raise ValueError(
            f"age: impossible age {float(a[impossible][0])!r}; ages must be >= 0 years"
        )
    # The band is the number of upper edges reached (one pass per edge, no binary search).
    band = np.zeros(a.shape, dtype=np.int8)
    for edge in AGE_BAND_EDGES[1:]:
        band += a >= edge
    return band


def stratum(sex: npt.ArrayLike, age: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """Stratum id (sex x age band) of each visit."""
    s = np.asarray(sex, dtype=np.int32)
    if s.size and ((s < 0) | (s > 1)).any():
        raise ValueError(f"sex: codes must be 0 (M) or 1 (F), got {int(s[(s < 0) | (s > 1)][0])}")
    return s * N_AGE_BANDS + age_band(age).astype(np.int32)
