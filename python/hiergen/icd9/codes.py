"""Syntax of ICD-9-CM diagnosis codes: normalisation and the category rule.

A normalised code is the dotted upper-case form used in the CMS tables with the dot put back:
numeric codes ``DDD[.D[D]]`` (``038.9``, ``403.91``), V codes ``VDD[.D[D]]`` (``V15.82``) and
E codes ``EDDD[.D]`` (``E888.9``). The category is the part before the dot: 3 characters, or
4 for E codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

# Undotted forms (after stripping blanks and NHDS "-" padding and upper-casing).
_UNDOTTED = re.compile(r"(?:(\d{3})(\d{0,2})|(V\d{2})(\d{0,2})|(E\d{3})(\d?))")
# Dotted forms; numeric categories may have lost their leading zeros ("38.9" -> "038.9").
_DOTTED = re.compile(r"(?:(\d{1,3})\.(\d{1,2})|(V\d{2})\.(\d{1,2})|(E\d{3})\.(\d))")


def normalize(code: object) -> str:
    """Return the dotted normal form of one ICD-9-CM diagnosis code.

    Accepts dotted or undotted forms, lower-case ``v``/``e``, surrounding blanks and NHDS ``-``
    padding (``2809-`` -> ``280.9``); keeps leading zeros (``0389`` -> ``038.9``). Raises
    ``ValueError`` naming the value when it is not ICD-9-CM diagnosis syntax. Validity against
    the v32 code list is :func:`hiergen.icd9.is_valid`.
    """
    if not isinstance(code, str):
        raise ValueError(f"ICD-9-CM code must be a string, got {code!r} ({type(code).__name__})")
    text = code.strip().rstrip("-").upper()
    if "." in text:
        m = _DOTTED.fullmatch(text)
        if m is None:
            raise ValueError(f"not an ICD-9-CM diagnosis code: {code!r}")
        if m.group(1) is not None:
            return f"{m.group(1).zfill(3)}.{m.group(2)}"
        head, tail = (m.group(3), m.group(4)) if m.group(3) else (m.group(5), m.group(6))
        return f"{head}.{tail}"
    m = _UNDOTTED.fullmatch(text)
    if m is None:
        raise ValueError(f"not an ICD-9-CM diagnosis code: {code!r}")
    groups = [g for g in m.groups() if g is not None]
    head, tail = groups
    return f"{head}.{tail}" if tail else head


def try_normalize(code: object) -> str | None:
    """:func:`normalize`, returning ``None`` instead of raising."""
    try:
        return normalize(code)
    except ValueError:
        return None


def category_of(code: str) -> str:
    """Category of a code: 3 characters (``401`` for ``401.9``), 4 for E codes (``E888``).

    The code is normalised first, so undotted input works too.
    """
    norm = normalize(code)
    return norm.split(".", 1)[0]


def normalize_many(
    codes: Iterable[object],
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
    """Normalise many codes: (normal forms with ``None`` where invalid, mask of the valid ones)."""
    out = np.array([try_normalize(c) for c in codes], dtype=object)
    ok = np.fromiter((v is not None for v in out), dtype=bool, count=out.size)
    return out, ok


_ICD10_SHAPE = re.compile(r"[A-Z]\d[0-9A-Z](?:\.?[0-9A-Z]{1,4})?")


def looks_like_icd10(code: object) -> bool:
    """Whether a string has the shape of an ICD-10(-CM) code and a letter ICD-9 never uses.

    ICD-9-CM letters are only V and E; a code starting with any other letter in ICD-10 shape
    (``I10``, ``J18.9``) is ICD-10. Shared letters (``E11.9``) are decided by the code lists,
    see :func:`hiergen.icd9.classify`.
    """
    if not isinstance(code, str):
        return False
    text = code.strip().upper()
    return bool(_ICD10_SHAPE.fullmatch(text)) and text[0] not in "VE"
