"""Hierarchy option ``own_categories``: frequent codes as categories of their own."""

from __future__ import annotations

import numpy as np
import pytest

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy, frequent_codes

CODES = ["401.9", "401.1", "250.00", "250.01", "250.40", "486", "V30.00"]


def test_own_categories_split_codes_off_and_stay_contiguous() -> None:
    h = Hierarchy.from_codes(CODES, own_categories=["250.00", "401.9", "401.1", "999.9"])
    # 401 lost all its codes and disappears; 250 keeps the rest; unknown codes are ignored
    assert h.categories == ("250", "250.00", "401.1", "401.9", "486", "V30")
    assert h.codes_of("250") == ("250.01", "250.40")
    assert h.codes_of("250.00") == ("250.00",)
    assert sorted(h.codes) == sorted(CODES)
    for c in range(h.n_categories):
        members = h.codes[h.offsets[c] : h.offsets[c + 1]]
        assert all(m.split(".")[0] == h.categories[c].split(".")[0] for m in members)
    again = Hierarchy.from_dict(h.to_dict())
    assert again.categories == h.categories and np.array_equal(again.offsets, h.offsets)


def test_own_categories_default_changes_nothing() -> None:
    a, b = Hierarchy.from_codes(CODES), Hierarchy.from_codes(CODES, own_categories=())
    assert a.categories == b.categories and a.codes == b.codes


def test_own_category_named_like_an_existing_category_is_refused() -> None:
    parent = {"A": "B", "B": "C", "D": "C"}  # code B is also the name of A's category
    with pytest.raises(ValueError, match="'B'"):
        Hierarchy.from_codes(["A", "B", "D"], category_of=parent.__getitem__,
                             own_categories=["B"])


def _cohort(visits: list[list[str]]) -> Cohort:
    vocab = tuple(sorted({c for v in visits for c in v}))
    idx = {c: i for i, c in enumerate(vocab)}
    lengths = [len(v) for v in visits]
    n = len(visits)
    return Cohort(
        patient_ids=np.arange(n, dtype=np.int64),
        patient_offsets=np.arange(n + 1, dtype=np.int64),
        visit_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        codes=np.array([idx[c] for v in visits for c in v], dtype=np.int32),
        vocab=vocab,
        sex=np.zeros(n, dtype=np.int8),
        age=np.full(n, 50.0, dtype=np.float32),
    )


def test_frequent_codes_counts_visits_and_skips_single_code_categories() -> None:
    visits = [["401.9", "486"]] * 5 + [["401.1", "250.00"]] * 2 + [["250.01"]] * 3
    cohort = _cohort(visits)
    # 486 is held by 5 visits but is alone in its category: splitting it changes nothing
    assert frequent_codes(cohort, 5) == ["401.9"]
    assert frequent_codes(cohort, 2) == ["250.00", "250.01", "401.1", "401.9"]
    assert frequent_codes(cohort, 6) == []
    with pytest.raises(ValueError, match="min_visits"):
        frequent_codes(cohort, 0)


def test_split_codes_remember_their_category_through_save_and_load() -> None:
    h = Hierarchy.from_codes(CODES, own_categories=["250.00", "401.9"])
    assert h.split_from == {"250.00": "250", "401.9": "401"}
    assert h.parent_labels == ("250", "250", "401", "401", "486", "V30")
    again = Hierarchy.from_dict(h.to_dict())
    assert again.parent_labels == h.parent_labels
    # Older files without split_from load with every category its own label.
    plain = {k: v for k, v in h.to_dict().items() if k != "split_from"}
    assert Hierarchy.from_dict(plain).parent_labels == h.categories
    with pytest.raises(ValueError, match="split_from"):
        Hierarchy(h.categories, h.codes, h.offsets, split_from={"999.9": "999"})


def test_outputs_show_the_coding_system_category_of_a_split_code(tmp_path) -> None:
    from hiergen.train import train

    visits = [["401.9", "250.00"]] * 40 + [["401.1", "250.01", "486"]] * 20
    model = train(_cohort(visits), tmp_path / "m", generator="markov", weighting="frequency",
                  own_code_min_visits=30)
    assert set(model.hierarchy.split_from) == {"250.00", "401.9"}
    batch = model.generate(age=[50.0] * 200, sex=[0] * 200, seed=1)
    table = batch.to_arrow().to_pydict()
    pairs = set(zip(table["category"], table["code"], strict=True))
    assert ("401", "401.9") in pairs and ("250", "250.00") in pairs
    assert all(code.split(".")[0] == cat for cat, code in pairs)
    assert {c for v in batch.categories_of(0) for c in v} <= {"250", "401", "486"}
    # The saved model keeps the split and its labels.
    from hiergen.model import HiergenModel

    assert HiergenModel.load(tmp_path / "m").hierarchy.split_from == model.hierarchy.split_from
