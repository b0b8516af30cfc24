"""ICD-9-CM normalisation, categories, chapters, sections, titles and the v32 list."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiergen import icd9

V32 = sorted(icd9.v32_codes())


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("4019", "401.9"), ("401.9", "401.9"), ("V1582", "V15.82"), ("v15.82", "V15.82"),
        ("E8889", "E888.9"), ("2809-", "280.9"), ("0389", "038.9"), ("38.9", "038.9"),
        ("64403", "644.03"), ("V3000", "V30.00"), ("E849", "E849"), ("585", "585"),
        (" 2765 ", "276.5"), ("486--", "486"),
    ],
)
def test_normalize_examples(raw: str, norm: str) -> None:
    assert icd9.normalize(raw) == norm


@pytest.mark.parametrize("bad", ["", "abc", "40", "401.999", "V1", "E88", "E888.99", "4O19",
                                 "401..9", "V15.823", "E8889-1", "I10"])
def test_normalize_rejects_garbage_naming_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace(".", r"\.")):
        icd9.normalize(bad)


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="389"):
        icd9.normalize(389)


@pytest.mark.parametrize(
    ("code", "cat"), [("401.9", "401"), ("4019", "401"), ("E888.9", "E888"), ("V15.82", "V15"),
                      ("038.9", "038")]
)
def test_category_rule(code: str, cat: str) -> None:
    assert icd9.category_of(code) == cat


def test_v32_list_has_14567_codes_and_parents_of_older_editions() -> None:
    assert len(icd9.v32_codes()) == 14567
    for parent in ("276.5", "585", "780.6", "401"):
        assert parent not in icd9.v32_codes()
        assert icd9.is_valid(parent)
    assert not icd9.is_valid("999.99")
    assert not icd9.is_valid("E119")  # ICD-10 shaped, not an ICD-9 E code


def test_classify() -> None:
    assert icd9.classify("4019") == ("valid", "401.9")
    assert icd9.classify("I10")[0] == "icd10"
    assert icd9.classify("E119")[0] == "icd10"  # E11.9 in ICD-10-CM
    assert icd9.classify("zz")[0] == "malformed"
    assert icd9.classify("999.99") == ("unknown", "999.99")


def test_chapters_sections_titles() -> None:
    assert icd9.chapter("401.9").range == "390-459"
    assert icd9.chapter("V30.00").title.startswith("Supplementary classification of factors")
    assert icd9.chapter("E888.9").range == "E000-E999"
    assert icd9.section("401.9").title == "Hypertensive disease"
    assert icd9.section("E888.9").title == "Accidental falls"
    assert icd9.section("042").range == "042-044"
    assert icd9.title("401.9") == "Unspecified essential hypertension"
    # codes of older editions that are parents in v32: their retired title (AHRQ CCI file)
    assert icd9.title("276.5") == icd9.title("2765") == "HYPOVOLEMIA (End 2005)"
    assert icd9.title("585") == "CHRONIC RENAL FAILURE (End 2005)"
    assert "PYREXIA" in (icd9.title("780.6") or "")
    # categories that never were leaf codes have no offline title
    assert icd9.title("250") is None and icd9.title("276") is None
    assert icd9.category_title("486") == "Pneumonia, organism unspecified"
    assert icd9.category_title("250.00") is None


def test_retired_titles_never_shadow_v32_titles() -> None:
    retired = icd9.retired_titles()
    assert len(retired) > 400
    assert not set(retired) & icd9.v32_codes()
    assert all(t == " ".join(t.split()) and t for t in retired.values())
    # most older-edition leaf codes found in real data are covered (all 20 of MIMIC's demo)
    assert len(set(retired) & icd9.v32_parents()) > 400


def test_older_edition_codes_in_real_data_have_titles(mimic3_demo_dir: Path) -> None:
    from hiergen.loaders import load

    c, _ = load(mimic3_demo_dir, format="mimic3")
    older = [code for code in c.vocab if code not in icd9.v32_codes()]
    assert len(older) == 20
    assert all(icd9.title(code) for code in older)


def test_every_valid_code_has_a_chapter_and_a_section() -> None:
    for code in icd9.v32_codes() | icd9.v32_parents():
        sec, chap = icd9.section(code), icd9.chapter(code)
        assert chap.start <= sec.start or sec.start[0] != chap.start[0]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(V32))
def test_every_v32_code_normalises_to_itself_dotted_and_undotted(code: str) -> None:
    assert icd9.normalize(code) == code
    assert icd9.normalize(code.replace(".", "")) == code
    assert icd9.is_valid(code)


_ALPHABET = st.sampled_from(list("0123456789VEve.- AIXZ/"))


@settings(max_examples=500, deadline=None)
@given(st.text(_ALPHABET, max_size=8))
def test_normalize_is_idempotent(raw: str) -> None:
    norm = icd9.try_normalize(raw)
    if norm is not None:
        assert icd9.normalize(norm) == norm
        assert icd9.category_of(norm) == norm.split(".")[0]


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=10))
def test_garbage_never_becomes_a_valid_code(raw: str) -> None:
    # Anything with a character outside ICD-9 syntax is rejected, never "repaired".
    if set(raw.strip().rstrip("-")) - set("0123456789VEve."):
        assert icd9.try_normalize(raw) is None
        assert not icd9.is_valid(raw)
