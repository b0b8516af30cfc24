"""Category -> code hierarchy over a code vocabulary.

Codes are numbered so that the codes of one category are contiguous: code ids
``offsets[c]:offsets[c + 1]`` belong to category ``c``. This is exactly the CSR layout the
compiled sampler (:class:`hiergen._core.CategoryIndex`) takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from hiergen.cohort import Cohort


def _default_category(code: str) -> str:
    # Imported lazily so that this module has no import cycle with hiergen.icd9.
    from hiergen.icd9 import category_of

    return category_of(code)


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """Immutable category -> code mapping.

    Attributes:
        categories: category strings, in id order.
        codes: code strings, grouped by category, in id order.
        offsets: int64 array of length ``len(categories) + 1`` (CSR over ``codes``).
        kind: ``"icd9"`` (two-stage) or ``"flat"`` (each code its own category).
        split_from: for each code made a category of its own (``own_categories``), the
            category it was split from (``{"401.9": "401"}``); see :attr:`parent_labels`.
    """

    categories: tuple[str, ...]
    codes: tuple[str, ...]
    offsets: npt.NDArray[np.int64]
    kind: str = "icd9"
    split_from: dict[str, str] = field(default_factory=dict)
    _code_ids: dict[str, int] = field(init=False, repr=False)
    _category_ids: dict[str, int] = field(init=False, repr=False)
    _parent_labels: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        if offsets.ndim != 1 or offsets.size != len(self.categories) + 1:
            raise ValueError("offsets: length must be number of categories + 1")
        if offsets[0] != 0 or offsets[-1] != len(self.codes) or (np.diff(offsets) <= 0).any():
            raise ValueError(
                "offsets: must start at 0, end at len(codes), every category non-empty"
            )
        offsets.setflags(write=False)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "_code_ids", {c: i for i, c in enumerate(self.codes)})
        object.__setattr__(self, "_category_ids", {c: i for i, c in enumerate(self.categories)})
        if len(self._code_ids) != len(self.codes):
            raise ValueError("codes: duplicate code in hierarchy")
        unknown = sorted(set(self.split_from) - set(self._category_ids))
        if unknown:
            raise ValueError(f"split_from: {unknown[0]!r} is not a category of the hierarchy")
        object.__setattr__(
            self, "_parent_labels", tuple(self.split_from.get(c, c) for c in self.categories)
        )

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_codes(
        cls,
        codes: Iterable[str],
        *,
        category_of: Callable[[str], str] | None = None,
        kind: str = "icd9",
        widen: bool = False,
        own_categories: Iterable[str] = (),
    ) -> Hierarchy:
        """Build from normalised code strings; categories and codes are sorted.

        ``widen=True`` adds every ICD-9-CM v32 code of the observed categories (so that a
        smoothing strategy can give unseen but valid codes some weight); the observed codes,
        including older editions' codes that are v32 parents, stay.

        ``own_categories``: codes that become categories of their own (named by the code,
        e.g. ``250.00`` beside ``250`` holding the other codes of 250), so that a Stage-1
        model sees them directly (see :func:`frequent_codes`). A category left without codes
        disappears; codes not in ``codes`` are ignored.
        """
        cat_fn = category_of or _default_category
        own = frozenset(own_categories)
        split_from: dict[str, str] = {}
        by_cat: dict[str, set[str]] = {}
        for code in codes:
            by_cat.setdefault(cat_fn(code), set()).add(code)
        if widen:
            from hiergen.icd9 import v32_by_category

            v32 = v32_by_category()
            for cat, members in by_cat.items():
                members.update(v32.get(cat, ()))
        if own:
            for cat in list(by_cat):
                split = {c for c in by_cat[cat] if c in own and c != cat}
                if not split:
                    continue
                if split & by_cat.keys():
                    clash = sorted(split & by_cat.keys())[0]
                    raise ValueError(
                        f"own_categories: code {clash!r} is also the name of a category"
                    )
                by_cat[cat] -= split
                for c in split:
                    by_cat[c] = {c}
                    split_from[c] = cat
                if not by_cat[cat]:
                    del by_cat[cat]
        categories = tuple(sorted(by_cat))
        ordered: list[str] = []
        offsets = [0]
        for cat in categories:
            ordered.extend(sorted(by_cat[cat]))
            offsets.append(len(ordered))
        return cls(categories, tuple(ordered), np.asarray(offsets, dtype=np.int64), kind,
                   split_from)

    @classmethod
    def flat(cls, codes: Iterable[str]) -> Hierarchy:
        """Each code its own category (the one-stage baseline)."""
        return cls.from_codes(codes, category_of=lambda c: c, kind="flat")

    # --- lookups ------------------------------------------------------------------------
    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def n_codes(self) -> int:
        return len(self.codes)

    @property
    def parent_labels(self) -> tuple[str, ...]:
        """The coding system's category of every category id: the category itself, or for a
        code split off as a category of its own, the category it came from (``401.9`` ->
        ``401``). What outputs show as a code's category."""
        return self._parent_labels

    @property
    def code_category(self) -> npt.NDArray[np.int32]:
        """Category id of every code id."""
        return np.repeat(
            np.arange(self.n_categories, dtype=np.int32), np.diff(self.offsets)
        )

    def code_id(self, code: str) -> int:
        try:
            return self._code_ids[code]
        except KeyError:
            raise KeyError(f"code {code!r} is not in the hierarchy") from None

    def category_id(self, category: str) -> int:
        try:
            return self._category_ids[category]
        except KeyError:
            raise KeyError(f"category {category!r} is not in the hierarchy") from None

    def code_ids(self, codes: Iterable[str]) -> npt.NDArray[np.int32]:
        """Ids of many codes (``KeyError`` on the first unknown one)."""
        return np.fromiter((self.code_id(c) for c in codes), dtype=np.int32)

    def codes_of(self, category: str) -> tuple[str, ...]:
        c = self.category_id(category)
        return self.codes[self.offsets[c] : self.offsets[c + 1]]

    # --- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "categories": list(self.categories),
            "codes": list(self.codes),
            "offsets": self.offsets.tolist(),
        }
        if self.split_from:
            out["split_from"] = dict(sorted(self.split_from.items()))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hierarchy:
        return cls(
            tuple(data["categories"]),
            tuple(data["codes"]),
            np.asarray(data["offsets"], dtype=np.int64),
            data.get("kind", "icd9"),
            dict(data.get("split_from", {})),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def frequent_codes(
    cohort: Cohort,
    min_visits: int,
    *,
    category_of: Callable[[str], str] | None = None,
) -> list[str]:
    """Codes held by at least ``min_visits`` visits of ``cohort`` whose category holds other
    codes of the cohort too: the candidates for :meth:`Hierarchy.from_codes`'
    ``own_categories`` (sorted)."""
    if min_visits < 1:
        raise ValueError(f"min_visits: must be >= 1, got {min_visits!r}")
    cat_fn = category_of or _default_category
    visit = np.repeat(np.arange(cohort.n_visits, dtype=np.int64), cohort.visit_lengths)
    pairs = np.unique(visit * np.int64(len(cohort.vocab)) + cohort.codes.astype(np.int64))
    counts = np.bincount(pairs % len(cohort.vocab), minlength=len(cohort.vocab))
    present = np.flatnonzero(counts > 0)
    per_cat: dict[str, int] = {}
    for i in present.tolist():
        cat = cat_fn(cohort.vocab[i])
        per_cat[cat] = per_cat.get(cat, 0) + 1
    return sorted(
        cohort.vocab[i]
        for i in present.tolist()
        if counts[i] >= min_visits and per_cat[cat_fn(cohort.vocab[i])] > 1
    )
