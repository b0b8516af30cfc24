"""Token sequences: encode a cohort, decode generated arrays (hiergen.generators.sequences)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiergen import Cohort, DataError, Hierarchy
from hiergen.generators.sequences import (
    END,
    N_SPECIAL,
    PAD,
    VISIT_END,
    TokenVocab,
    build_vocab,
    decode,
    encode,
)


def _category(code: str) -> str:
    return code.split(".", 1)[0]


def make_cohort(patients: list[list[list[str]]], sex: list[int], age: list[float]) -> Cohort:
    """A cohort from nested lists: patients -> visits -> codes."""
    vocab = sorted({c for p in patients for v in p for c in v})
    index = {c: i for i, c in enumerate(vocab)}
    po, vo, codes, vsex, vage = [0], [0], [], [], []
    for p, s, a in zip(patients, sex, age, strict=True):
        for v in p:
            codes.extend(index[c] for c in v)
            vo.append(len(codes))
            vsex.append(s)
            vage.append(a)
        po.append(len(vo) - 1)
    return Cohort(
        patient_ids=np.arange(len(patients)),
        patient_offsets=np.asarray(po, dtype=np.int64),
        visit_offsets=np.asarray(vo, dtype=np.int64),
        codes=np.asarray(codes, dtype=np.int32),
        vocab=tuple(vocab),
        sex=np.asarray(vsex, dtype=np.int8),
        age=np.asarray(vage, dtype=np.float32),
    )


def _hierarchy(cohort: Cohort) -> Hierarchy:
    return Hierarchy.from_codes(cohort.vocab, category_of=_category)


PATIENTS = [
    [["401.9", "250.00", "250.01"], ["401.1"]],
    [["V30.00"]],
    [["401.9", "414.01"], [], ["250.00", "414.00", "414.01", "401.9"]],
]


def test_vocab_orders_by_frequency_and_caps_repeats() -> None:
    cohort = make_cohort(PATIENTS, [0, 1, 1], [60.0, 0.0, 70.5])
    h = _hierarchy(cohort)
    vocab = build_vocab(cohort, h)
    assert vocab.labels == ("401", "250", "414", "V30")  # 4, 3, 3 (tie by id), 1 rows
    assert vocab.max_repeats.tolist() == [0, 0, 0, 2, 2, 2, 1]
    assert build_vocab(cohort, h, order="id").labels == ("250", "401", "414", "V30")
    assert TokenVocab.from_dict(vocab.to_dict()).labels == vocab.labels


def test_encode_layout() -> None:
    cohort = make_cohort(PATIENTS, [0, 1, 1], [60.0, 0.0, 70.5])
    h = _hierarchy(cohort)
    vocab = build_vocab(cohort, h)
    seqs = encode(cohort, h, vocab)
    t401, t250, t414, tv30 = range(N_SPECIAL, N_SPECIAL + 4)
    expected = [
        [t401, t250, t250, VISIT_END, t401, END],
        [tv30, END],
        [t401, t414, VISIT_END, t401, t250, t414, t414, END],  # the empty visit is dropped
    ]
    bounds = zip(seqs.offsets[:-1], seqs.offsets[1:], strict=True)
    assert [seqs.tokens[a:b].tolist() for a, b in bounds] == expected
    assert seqs.sex.tolist() == [0, 1, 1]
    assert seqs.age.tolist() == [60.0, 0.0, 70.5]
    padded = seqs.padded([1, 0])
    assert padded.shape == (2, 6)
    assert padded[0].tolist() == [tv30, END, PAD, PAD, PAD, PAD]
    summary = seqs.summary()
    assert summary["n_visits"] == 5 and summary["max_visits"] == 2
    assert summary["max_categories_per_visit"] == 4


def test_decode_inverts_encode() -> None:
    cohort = make_cohort(PATIENTS, [0, 1, 1], [60.0, 0.0, 70.5])
    h = _hierarchy(cohort)
    vocab = build_vocab(cohort, h)
    seqs = encode(cohort, h, vocab)
    out = decode(seqs.padded(), seqs.sex, seqs.age, vocab)
    assert out.n_patients == 3 and out.n_visits == 5
    assert out.patient_offsets.tolist() == [0, 2, 3, 5]
    got = [sorted(h.categories[c] for c in out.categories[a:b]) for a, b in
           zip(out.visit_offsets[:-1], out.visit_offsets[1:], strict=True)]
    assert got == [["250", "250", "401"], ["401"], ["V30"], ["401", "414"],
                   ["250", "401", "414", "414"]]
    assert out.visit_age.tolist() == [60.0, 60.0, 0.0, 70.5, 70.5]


def test_decode_stops_at_end_and_drops_empty_visits() -> None:
    cohort = make_cohort(PATIENTS, [0, 1, 1], [60.0, 0.0, 70.5])
    vocab = build_vocab(cohort, _hierarchy(cohort))
    c = N_SPECIAL
    rows = np.array([
        [c, VISIT_END, VISIT_END, c + 1, END, c + 2, c + 2],  # tokens after END ignored
        [c + 3, c + 3, PAD, PAD, PAD, PAD, PAD],  # no END: the row end closes the visit
        [END, PAD, PAD, PAD, PAD, PAD, PAD],  # a patient without visits
    ])
    out = decode(rows, [0, 1, 0], [1.0, 2.0, 3.0], vocab)
    assert out.patient_offsets.tolist() == [0, 2, 3, 3]
    assert out.visit_offsets.tolist() == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="tokens"):
        decode(rows + 100, [0, 1, 0], [1.0, 2.0, 3.0], vocab)
    with pytest.raises(ValueError, match="one value per row"):
        decode(rows, [0, 1], [1.0, 2.0], vocab)


def test_unknown_category_and_empty_cohort() -> None:
    train = make_cohort(PATIENTS[:2], [0, 1], [60.0, 0.0])
    full = make_cohort(PATIENTS, [0, 1, 1], [60.0, 0.0, 70.5])
    h = _hierarchy(full)
    vocab = build_vocab(train, h)
    with pytest.raises(DataError, match="'414'"):
        encode(full, h, vocab)
    seqs = encode(full, h, vocab, unknown="drop")
    assert vocab.labels == ("250", "401", "V30")
    assert seqs.n_patients == 3
    assert seqs.tokens[seqs.offsets[2]:].tolist() == [N_SPECIAL + 1, VISIT_END, N_SPECIAL,
                                                       N_SPECIAL + 1, END]
    empty = make_cohort([[[]]], [0], [1.0])
    with pytest.raises(DataError, match="no diagnosis codes"):
        build_vocab(empty, h)
    with pytest.raises(DataError, match="nothing to encode"):
        encode(empty, h, vocab)


visits_st = st.lists(
    st.lists(st.sampled_from(["401.9", "401.1", "250.00", "V30.00", "E888.9", "414.01"]),
             unique=True, min_size=1, max_size=4),
    min_size=1, max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(visits_st, min_size=1, max_size=6))
def test_roundtrip_property(patients: list[list[list[str]]]) -> None:
    cohort = make_cohort(patients, [i % 2 for i in range(len(patients))],
                         [float(i) for i in range(len(patients))])
    h = _hierarchy(cohort)
    vocab = build_vocab(cohort, h)
    seqs = encode(cohort, h, vocab)
    assert (seqs.tokens[seqs.offsets[1:] - 1] == END).all()
    out = decode(seqs.padded(), seqs.sex, seqs.age, vocab)
    assert out.n_visits == cohort.n_visits
    assert np.array_equal(out.visit_offsets, cohort.visit_offsets)
    cats = cohort.category_ids_in(h)
    for v in range(cohort.n_visits):
        a, b = cohort.visit_offsets[v], cohort.visit_offsets[v + 1]
        assert sorted(out.categories[a:b].tolist()) == sorted(cats[a:b].tolist())
