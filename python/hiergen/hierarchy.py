"""Category -> code hierarchy over a code vocabulary.

Codes are numbered so that the codes of one category are contiguous: code ids
``offsets[c]:offsets[c + 1]`` belong to category ``c``. This is exactly the CSR layout the
compiled sampler (:class:`hiergen._core.CategoryIndex`) takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


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
    """

    categories: tuple[str, ...]
    codes: tuple[str, ...]
    offsets: npt.NDArray[np.int64]
    kind: str = "icd9"
    _code_ids: dict[str, int] = field(init=False, repr=False)
    _category_ids: dict[str, int] = field(init=False, repr=False)

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

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_codes(
        cls,
        codes: Iterable[str],
        *,
        category_of: Callable[[str], str] | None = None,
        kind: str = "icd9",
        widen: bool = False,
    ) -> Hierarchy:
        """Build from normalised code strings; categories and codes are sorted.

        ``widen=True`` adds every ICD-9-CM v32 code of the observed categories (so that a
        smoothing strategy can give unseen but valid codes some weight); the observed codes,
        including older editions' codes that are v32 parents, stay.
        """
        cat_fn = category_of or _default_category
        by_cat: dict[str, set[str]] = {}
        for code in codes:
            by_cat.setdefault(cat_fn(code), set()).add(code)
        if widen:
            from hiergen.icd9 import v32_by_category

            v32 = v32_by_category()
            for cat, members in by_cat.items():
                members.update(v32.get(cat, ()))
        categories = tuple(sorted(by_cat))
        ordered: list[str] = []
        offsets = [0]
        for cat in categories:
            ordered.extend(sorted(by_cat[cat]))
            offsets.append(len(ordered))
        return cls(categories, tuple(ordered), np.asarray(offsets, dtype=np.int64), kind)

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
        return {
            "kind": self.kind,
            "categories": list(self.categories),
            "codes": list(self.codes),
            "offsets": self.offsets.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hierarchy:
        return cls(
            tuple(data["categories"]),
            tuple(data["codes"]),
            np.asarray(data["offsets"], dtype=np.int64),
            data.get("kind", "icd9"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
