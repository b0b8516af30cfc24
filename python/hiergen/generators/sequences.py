"""Token sequences for Stage-1 sequence models (torch-free, vectorised numpy).

A patient becomes one token sequence: the visits in order, each the multiset of its category
tokens in canonical (ascending token id) order, closed by a marker: ``VISIT_END`` after every
visit but the last, ``END`` after the last one. Demographics (age, sex) are not tokens: models
read them as a prefix (the ``x_num`` / ``x_cat`` of the design page).

Token ids: ``PAD = 0``, ``VISIT_END = 1``, ``END = 2``, then one token per category seen in the
training data, numbered by decreasing training frequency (ties by category id). Ascending token
order within a visit therefore lists the common categories first, and a decoder can keep a visit
valid by only allowing tokens ``>=`` the previous one (a repeat at most as often as the category
has codes, so that Stage 2 can draw that many distinct codes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.errors import DataError
from hiergen.generators.base import CategoryPatients
from hiergen.hierarchy import Hierarchy

log = logging.getLogger(__name__)

PAD: Final = 0
VISIT_END: Final = 1
END: Final = 2
N_SPECIAL: Final = 3
SPECIAL_LABELS: Final = ("<pad>", "<visit_end>", "<end>")


@dataclass(frozen=True, eq=False)
class TokenVocab:
    """Map between hierarchy category ids and token ids.

    Attributes:
        categories: int32, hierarchy category id of token ``N_SPECIAL + i``.
        labels: category strings of those tokens (to check a hierarchy at load time).
        max_repeats: int32 per token id (``n_tokens``): how often the token may occur in one
            visit (the number of codes of its category; 0 for the special tokens).
        n_hierarchy_categories: number of categories of the hierarchy the vocab was built on.
    """

    categories: npt.NDArray[np.int32]
    labels: tuple[str, ...]
    max_repeats: npt.NDArray[np.int32]
    n_hierarchy_categories: int

    @property
    def n_tokens(self) -> int:
        return int(self.categories.size + N_SPECIAL)

    @property
    def token_of_category(self) -> npt.NDArray[np.int32]:
        """Token id of every hierarchy category id, ``-1`` where the category has no token."""
        lookup = np.full(self.n_hierarchy_categories, -1, dtype=np.int32)
        lookup[self.categories] = np.arange(N_SPECIAL, self.n_tokens, dtype=np.int32)
        return lookup

    def categories_of(self, tokens: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Hierarchy category ids of category tokens (``ValueError`` on a special token)."""
        t = np.asarray(tokens, dtype=np.int64)
        if t.size and (t.min() < N_SPECIAL or t.max() >= self.n_tokens):
            raise ValueError(f"tokens: category tokens are {N_SPECIAL}..{self.n_tokens - 1}")
        return self.categories[t - N_SPECIAL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": self.categories.tolist(),
            "labels": list(self.labels),
            "max_repeats": self.max_repeats.tolist(),
            "n_hierarchy_categories": self.n_hierarchy_categories,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenVocab:
        vocab = cls(
            categories=np.asarray(data["categories"], dtype=np.int32),
            labels=tuple(data["labels"]),
            max_repeats=np.asarray(data["max_repeats"], dtype=np.int32),
            n_hierarchy_categories=int(data["n_hierarchy_categories"]),
        )
        if vocab.max_repeats.size != vocab.n_tokens or len(vocab.labels) != vocab.categories.size:
            raise ValueError("vocab: categories, labels and max_repeats disagree in length")
        return vocab

    def check_hierarchy(self, hierarchy: Hierarchy) -> None:
        """Raise ``ValueError`` if ``hierarchy`` is not the one the vocab was built on."""
        pairs = zip(self.categories.tolist(), self.labels, strict=True)
        if hierarchy.n_categories != self.n_hierarchy_categories or any(
            hierarchy.categories[c] != lab for c, lab in pairs
        ):
            raise ValueError("hierarchy: categories differ from the ones the model was trained on")


@dataclass(frozen=True, eq=False)
class TokenSequences:
    """Token sequences of many patients (CSR) with their demographics.

    Attributes:
        tokens: int32, all sequences concatenated (each ends with ``END``).
        offsets: int64, ``n_patients + 1``.
        sex: int8 per patient (sex of the first visit).
        age: float32 per patient (age at the first visit, years).
    """

    tokens: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    sex: npt.NDArray[np.int8]
    age: npt.NDArray[np.float32]

    @property
    def n_patients(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)

    def padded(
        self, index: npt.ArrayLike | None = None, *, length: int | None = None
    ) -> npt.NDArray[np.int64]:
        """Sequences ``index`` (default all) as an ``(n, length)`` int64 array padded with PAD."""
        idx = np.arange(self.n_patients) if index is None else np.asarray(index, dtype=np.int64)
        lens = self.lengths[idx]
        width = int(lens.max(initial=0)) if length is None else int(length)
        if lens.size and lens.max() > width:
            raise ValueError(f"length: {width} is shorter than the longest sequence {lens.max()}")
        out = np.full((idx.size, width), PAD, dtype=np.int64)
        cols = np.arange(width)
        mask = cols[None, :] < lens[:, None]
        src = self.offsets[idx][:, None] + cols[None, :]
        out[mask] = self.tokens[src[mask]]
        return out

    def summary(self) -> dict[str, float]:
        """Counts and length statistics (stored with a model as its training-data summary)."""
        t = self.tokens
        n_visits = int(np.count_nonzero((t == VISIT_END) | (t == END)))
        n_cat = int(np.count_nonzero(t >= N_SPECIAL))
        visit_len = _visit_lengths(t)
        per_patient = (
            1 + np.add.reduceat((t == VISIT_END).astype(np.int64), self.offsets[:-1])
            if t.size
            else np.zeros(0, dtype=np.int64)
        )
        return {
            "n_patients": self.n_patients,
            "n_visits": n_visits,
            "n_category_tokens": n_cat,
            "tokens_per_patient": float(t.size / max(self.n_patients, 1)),
            "categories_per_visit": float(n_cat / max(n_visits, 1)),
            "visits_per_patient": float(n_visits / max(self.n_patients, 1)),
            "max_tokens": int(self.lengths.max(initial=0)),
            "max_categories_per_visit": int(visit_len.max(initial=0)),
            "max_visits": int(np.max(per_patient, initial=0)),
            "share_female": float(self.sex.mean()) if self.sex.size else 0.0,
            "mean_age": float(self.age.mean()) if self.age.size else 0.0,
        }


def _visit_lengths(tokens: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    marker = np.flatnonzero(tokens < N_SPECIAL)
    return np.diff(np.r_[-1, marker]) - 1


def build_vocab(
    cohort: Cohort,
    hierarchy: Hierarchy,
    *,
    order: Literal["frequency", "id"] = "frequency",
) -> TokenVocab:
    """Tokens for the categories present in ``cohort``, by decreasing frequency (or by id)."""
    cats = _category_rows(cohort, hierarchy)
    if cats.size == 0:
        raise DataError("cohort: no diagnosis codes, cannot build a vocabulary from it")
    counts = np.bincount(cats, minlength=hierarchy.n_categories)
    present = np.flatnonzero(counts)
    if order == "frequency":
        present = present[np.lexsort((present, -counts[present]))]
    elif order != "id":
        raise ValueError(f"order: expected 'frequency' or 'id', got {order!r}")
    repeats = np.zeros(present.size + N_SPECIAL, dtype=np.int32)
    repeats[N_SPECIAL:] = np.diff(hierarchy.offsets)[present]
    return TokenVocab(
        categories=present.astype(np.int32),
        labels=tuple(hierarchy.categories[c] for c in present.tolist()),
        max_repeats=repeats,
        n_hierarchy_categories=hierarchy.n_categories,
    )


def _category_rows(cohort: Cohort, hierarchy: Hierarchy) -> npt.NDArray[np.int32]:
    try:
        return cohort.category_ids_in(hierarchy)
    except KeyError as exc:
        msg = f"cohort: {exc.args[0]} (build the hierarchy from the cohort's codes)"
        raise DataError(msg) from None


def encode(
    cohort: Cohort,
    hierarchy: Hierarchy,
    vocab: TokenVocab,
    *,
    unknown: Literal["error", "drop"] = "error",
) -> TokenSequences:
    """Token sequences of every patient of ``cohort`` with at least one non-empty visit.

    Empty visits are dropped. A category without a token (not seen when the vocab was built)
    raises :class:`DataError`, or with ``unknown="drop"`` is left out (a visit left empty goes).
    """
    if unknown not in ("error", "drop"):
        raise ValueError(f"unknown: expected 'error' or 'drop', got {unknown!r}")
    cats = _category_rows(cohort, hierarchy)
    tok = vocab.token_of_category[cats]
    missing = tok < 0
    if missing.any():
        if unknown == "error":
            bad = hierarchy.categories[int(cats[np.argmax(missing)])]
            raise DataError(
                f"cohort: category {bad!r} ({int(missing.sum())} rows) is not in the model's "
                "vocabulary; pass unknown='drop' to leave such rows out"
            )
        log.info("encode: dropping %d rows of categories outside the vocabulary", missing.sum())
    vlen = cohort.visit_lengths
    visit_of_row = np.repeat(np.arange(cohort.n_visits, dtype=np.int64), vlen)
    keep_rows = ~missing
    visit_of_row, tok = visit_of_row[keep_rows], tok[keep_rows]
    vlen = np.bincount(visit_of_row, minlength=cohort.n_visits)
    keep_visit = vlen > 0
    visit_patient = cohort.visit_patient[keep_visit]
    vlen = vlen[keep_visit]
    n_visits, n_rows = int(vlen.size), int(tok.size)
    if n_visits == 0:
        raise DataError("cohort: no patient has a visit with a known category; nothing to encode")
    # Renumber visits densely, then sort tokens inside each visit.
    new_visit = np.cumsum(keep_visit) - 1
    visit_of_row = new_visit[visit_of_row]
    order = np.lexsort((tok, visit_of_row))
    tok = tok[order]
    vo = np.zeros(n_visits + 1, dtype=np.int64)
    np.cumsum(vlen, out=vo[1:])
    out = np.empty(n_rows + n_visits, dtype=np.int32)
    out[np.arange(n_rows) + np.repeat(np.arange(n_visits), vlen)] = tok
    marker_pos = vo[1:] + np.arange(n_visits)
    patients, first_visit, per_patient = np.unique(
        visit_patient, return_index=True, return_counts=True
    )
    last_visit = first_visit + per_patient - 1
    out[marker_pos] = VISIT_END
    out[marker_pos[last_visit]] = END
    offsets = np.zeros(patients.size + 1, dtype=np.int64)
    offsets[1:] = marker_pos[last_visit] + 1
    first_global = np.flatnonzero(keep_visit)[first_visit]
    return TokenSequences(
        tokens=out,
        offsets=offsets,
        sex=cohort.sex[first_global].astype(np.int8),
        age=cohort.age[first_global].astype(np.float32),
    )


def decode(
    tokens: npt.ArrayLike,
    sex: npt.ArrayLike,
    age: npt.ArrayLike,
    vocab: TokenVocab,
) -> CategoryPatients:
    """Generated ``(n_patients, length)`` token arrays back into :class:`CategoryPatients`.

    Each row is read up to its first ``END`` (or its end); ``PAD`` is skipped, every marker
    closes a visit, and empty visits are left out.
    """
    t = np.asarray(tokens)
    if t.ndim != 2:
        raise ValueError(f"tokens: expected a 2-D (patients, length) array, got shape {t.shape}")
    n, width = t.shape
    sex_a = np.asarray(sex, dtype=np.int8).reshape(-1)
    age_a = np.asarray(age, dtype=np.float32).reshape(-1)
    if sex_a.size != n or age_a.size != n:
        raise ValueError(f"sex, age: one value per row of tokens ({n}) expected")
    if t.size and (t.min() < 0 or t.max() >= vocab.n_tokens):
        raise ValueError(f"tokens: ids must be in 0..{vocab.n_tokens - 1}")
    is_end = t == END
    after_end = (np.cumsum(is_end, axis=1) - is_end) > 0
    marker = ((t == VISIT_END) | is_end) & ~after_end
    is_cat = (t >= N_SPECIAL) & ~after_end
    visit_num = np.cumsum(marker, axis=1) - marker
    rows, cols = np.nonzero(is_cat)
    key = rows.astype(np.int64) * (width + 1) + visit_num[rows, cols]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else key
    visit_offsets = np.r_[starts, key.size].astype(np.int64)
    visits_per_patient = np.bincount(rows[starts], minlength=n)
    patient_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(visits_per_patient, out=patient_offsets[1:])
    return CategoryPatients(
        sex=sex_a,
        age=age_a,
        patient_offsets=patient_offsets,
        visit_offsets=visit_offsets,
        categories=vocab.categories_of(t[rows, cols]),
        visit_age=np.repeat(age_a, visits_per_patient),
    )


__all__ = [
    "END",
    "N_SPECIAL",
    "PAD",
    "SPECIAL_LABELS",
    "VISIT_END",
    "TokenSequences",
    "TokenVocab",
    "build_vocab",
    "decode",
    "encode",
]
