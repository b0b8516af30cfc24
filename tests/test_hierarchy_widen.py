"""Hierarchy extensions: widening to all v32 codes of the observed categories; flat."""

from __future__ import annotations

from hiergen import icd9
from hiergen.hierarchy import Hierarchy


def test_widen_adds_all_v32_codes_of_observed_categories_and_keeps_old_parents() -> None:
    h = Hierarchy.from_codes(["401.9", "276.5", "585"], widen=True)
    assert h.categories == ("276", "401", "585")
    assert set(h.codes_of("401")) == {"401.0", "401.1", "401.9"}
    assert "276.5" in h.codes_of("276") and "276.52" in h.codes_of("276")
    assert set(h.codes_of("585")) == {"585", *icd9.v32_by_category()["585"]}
    # categories stay contiguous
    for c, cat in enumerate(h.categories):
        codes = h.codes[h.offsets[c] : h.offsets[c + 1]]
        assert all(icd9.category_of(x) == cat for x in codes)


def test_without_widen_only_observed_codes() -> None:
    h = Hierarchy.from_codes(["401.9", "E888.9"])
    assert h.codes == ("401.9", "E888.9")
    assert h.categories == ("401", "E888")


def test_flat_is_one_code_per_category() -> None:
    h = Hierarchy.flat(["401.9", "401.1"])
    assert h.n_categories == h.n_codes == 2 and h.kind == "flat"
