"""ICD-9-CM diagnosis codes: normalisation, categories, chapters, sections, titles, v32 list."""

from __future__ import annotations

from typing import Literal

from hiergen.icd9.chapters import Block, chapter, chapters, section, sections
from hiergen.icd9.codes import category_of, looks_like_icd10, normalize, try_normalize
from hiergen.icd9.v32 import (
    icd10cm_codes,
    retired_titles,
    v32_by_category,
    v32_codes,
    v32_parents,
    v32_titles,
)

CodeClass = Literal["valid", "malformed", "icd10", "unknown"]


def is_valid(code: object) -> bool:
    """Whether ``code`` is a v32 code or a v32 parent code (an older edition's leaf)."""
    norm = try_normalize(code)
    return norm is not None and (norm in v32_codes() or norm in v32_parents())


def title(code: str) -> str | None:
    """The title of a code: the CMS v32 long title of a leaf code; for a code that was a leaf
    in an older edition (``276.5``, ``585``), its retired title (upper case, with the year it
    ended, see :func:`retired_titles`); ``None`` for categories that never were leaf codes
    (``250``, ``276``): no offline source names them (see :func:`category_title`)."""
    norm = normalize(code)
    return v32_titles().get(norm) or retired_titles().get(norm)


def category_title(code: str) -> str | None:
    """The title of a code's category where one is known (a category that is itself a code,
    such as ``486``), else ``None``; use :func:`section` for the code range around it."""
    return title(category_of(code))


def classify(code: object) -> tuple[CodeClass, str | None]:
    """Classify a raw code: (``valid``/``malformed``/``icd10``/``unknown``, normal form or None).

    ``unknown`` is well-formed ICD-9-CM syntax that is in neither the v32 list nor its parents;
    ``icd10`` is a string that is ICD-10-CM (by shape, or found in the ICD-10-CM 2024 list).
    """
    norm = try_normalize(code)
    if norm is not None and (norm in v32_codes() or norm in v32_parents()):
        return "valid", norm
    if looks_like_icd10(code):
        return "icd10", None
    if isinstance(code, str) and code.strip().upper().replace(".", "") in icd10cm_codes():
        return "icd10", None
    if norm is None:
        return "malformed", None
    return "unknown", norm


__all__ = [
    "Block",
    "CodeClass",
    "category_of",
    "category_title",
    "chapter",
    "chapters",
    "classify",
    "icd10cm_codes",
    "is_valid",
    "looks_like_icd10",
    "normalize",
    "retired_titles",
    "section",
    "sections",
    "title",
    "try_normalize",
    "v32_by_category",
    "v32_codes",
    "v32_parents",
    "v32_titles",
]
