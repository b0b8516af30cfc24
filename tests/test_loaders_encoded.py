"""The low-memory building blocks of the loaders: batched dictionary reading, sort-based
ranking, duplicate detection; checked against plain Python on small and multi-batch inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hiergen.loaders import _encoded, load
from hiergen.loaders._assemble import rank_values, repeated_pairs
from hiergen.loaders._encoded import read_encoded_csv, read_encoded_parquet


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 60), elements=st.sampled_from(
    [-(2**40), -5, 0, 1, 2, 3, 7, 100, 2**33])))
def test_rank_values_matches_unique(values: np.ndarray) -> None:
    for arr in (values, np.sort(values), values % 50):  # stable-sort, sorted, small-range paths
        ranks, distinct = rank_values(arr)
        exp_distinct, exp_ranks = np.unique(arr, return_inverse=True)
        assert distinct.tolist() == exp_distinct.tolist()
        assert ranks.tolist() == exp_ranks.reshape(-1).tolist()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), max_size=60))
def test_repeated_pairs_marks_all_but_the_first(pairs: list[tuple[int, int]]) -> None:
    first = np.array([p[0] for p in pairs], dtype=np.int32)
    second = np.array([p[1] for p in pairs], dtype=np.int16)
    seen: set[tuple[int, int]] = set()
    expected = []
    for p in pairs:
        expected.append(p in seen)
        seen.add(p)
    assert repeated_pairs(first, second, 5).tolist() == expected
    where = np.arange(len(pairs)) % 3 != 1  # only the selected rows count
    seen.clear()
    expected = []
    for p, w in zip(pairs, where, strict=True):
        expected.append(bool(w) and p in seen)
        if w:
            seen.add(p)
    assert repeated_pairs(first, second, 5, where).tolist() == expected


def _decoded(col: _encoded.EncodedColumn) -> list[object]:
    return [col[i] for i in range(len(col))]


def test_csv_batches_share_one_dictionary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_encoded, "_CSV_BLOCK", 64)  # many small batches
    rows = [(f"p{i % 7}", f"{(i * 37) % 11:04d}", "" if i % 5 == 0 else str(i % 3))
            for i in range(200)]
    p = tmp_path / "t.csv"
    p.write_text("Pat,Code,X\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    cols = read_encoded_csv(p, ["pat", "code", "x"])
    assert _decoded(cols["pat"]) == [r[0] for r in rows]
    assert _decoded(cols["code"]) == [r[1] for r in rows]  # strings: zeros kept
    assert _decoded(cols["x"]) == [r[2] or None for r in rows]  # blank -> null
    assert len(cols["pat"].dictionary) == 7 and cols["pat"].indices.dtype == np.int8
    pat = cols["pat"]
    pat.sort_in_place()
    assert pat.dictionary.to_pylist() == sorted(pat.dictionary.to_pylist())
    assert _decoded(pat) == [r[0] for r in rows]


def test_parquet_row_groups_nulls_and_wide_integers(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_encoded, "BATCH_ROWS", 10)
    ids = [3_000_000_000 if i % 9 == 0 else 1000 - i for i in range(95)]
    ages = [None if i % 13 == 0 else float(i % 4) + 0.5 for i in range(95)]
    ages[5] = float("nan")
    codes = [None if i % 17 == 0 else f"V{i % 3}" for i in range(95)]
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"ID": ids, "age": ages, "code": codes}), p, row_group_size=20)
    cols = read_encoded_parquet(p, ["id", "age", "code"])
    assert _decoded(cols["id"]) == ids
    assert _decoded(cols["age"]) == [None if a is None or a != a else a for a in ages]
    assert _decoded(cols["code"]) == codes
    assert cols["id"].dictionary.to_pylist() == sorted(set(ids))  # numbers come sorted


def test_grouped_and_shuffled_tables_give_the_same_cohort(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    codes = ["4019", "25000", "486", "V3000", "2765", "E8889", "0389", "I10", "xx"]
    lines = []
    for p in range(40):
        for v in range(1 + p % 3):
            for _ in range(rng.integers(1, 6)):
                lines.append(f"{p},{v},{rng.choice(codes)},{30 + v},{'MF'[p % 2]}")
    head = "patient_id,visit_id,code,age,sex\n"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(head + "\n".join(lines) + "\n")
    b.write_text(head + "\n".join(rng.permutation(lines)) + "\n")
    ca, ra = load(a, format="table")
    cb, rb = load(b, format="table")
    assert ra.dropped == rb.dropped and ra.rows_kept == rb.rows_kept
    assert ca.vocab == cb.vocab and ca.patient_ids.tolist() == cb.patient_ids.tolist()
    assert ca.visit_offsets.tolist() == cb.visit_offsets.tolist()
    for v in range(ca.n_visits):  # same code sets (order inside a visit is source order)
        sa = ca.codes[ca.visit_offsets[v] : ca.visit_offsets[v + 1]]
        sb = cb.codes[cb.visit_offsets[v] : cb.visit_offsets[v + 1]]
        assert sorted(sa.tolist()) == sorted(sb.tolist())
    assert ca.codes.dtype == np.int32 and ca.visit_offsets.dtype == np.int64
