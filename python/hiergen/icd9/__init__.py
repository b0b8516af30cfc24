"""ICD-9-CM diagnosis codes: normalisation, categories, chapters, sections, titles, v32 list."""

from __future__ import annotations

from typing import Literal

from hiergen.icd9.chapters import Block, chapter, chapters, section, sections
from hiergen.icd9.codes import category_of, looks_like_icd10, normalize, try_normalize
from hiergen.icd9.v32 import icd10cm_codes, v32_by_category, v32_codes, v32_parents, v32_titles

CodeClass = Literal["valid", "malformed", "icd10", "unknown"]


def is_valid(code: object) -> bool:
    """Whether ``code`` is a v32 code or a v32 parent code (an older edition's leaf)."""
    norm = try_normalize(code)
    return norm is not None and (norm in v32_codes() or norm in v32_parents())


def title(code: str) -> str | None:
    """The CMS v32 long title of a code, or ``None`` for parent codes (not in the CMS files)."""
    return v32_titles().get(normalize(code))


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
    "chapter",
    "chapters",
    "classify",
    "icd10cm_codes",
    "is_valid",
    "looks_like_icd10",
    "normalize",
    "section",
    "sections",
    "title",
    "try_normalize",
    "v32_by_category",
    "v32_codes",
    "v32_parents",
    "v32_titles",
]
