"""Generated patients: Stage-1 category arrays plus the Stage-2 code of every category."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.demographics import SEX_LABELS
from hiergen.generators.base import CategoryPatients
from hiergen.hierarchy import Hierarchy

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, eq=False)
class GeneratedPatients:
    """A batch of synthetic patients as CSR arrays.

    Attributes:
        first_id: subject id of the first patient; patient ``p`` is ``first_id + p``.
        stage1: the Stage-1 output (sex, age, visits as category multisets, visit ages).
        codes: int32 code ids of ``hierarchy``, one per entry of ``stage1.categories``.
        hierarchy: the model's hierarchy (category and code strings).
    """

    first_id: int
    stage1: CategoryPatients
    codes: npt.NDArray[np.int32]
    hierarchy: Hierarchy

    def __post_init__(self) -> None:
        if self.codes.shape != self.stage1.categories.shape:
            raise ValueError("codes: one code per generated category expected")

    def __repr__(self) -> str:
        return (
            f"GeneratedPatients(first_id={self.first_id}, patients={self.n_patients}, "
            f"visits={self.n_visits}, codes={self.n_rows})"
        )

    # --- shape ----------------------------------------------------------------------------
    @property
    def n_patients(self) -> int:
        return self.stage1.n_patients

    @property
    def n_visits(self) -> int:
        return self.stage1.n_visits

    @property
    def n_rows(self) -> int:
        return int(self.codes.size)

    @property
    def patient_ids(self) -> npt.NDArray[np.int64]:
        return np.arange(self.first_id, self.first_id + self.n_patients, dtype=np.int64)

    @cached_property
    def visit_patient(self) -> npt.NDArray[np.int64]:
        """Local patient index of every visit."""
        return np.repeat(
            np.arange(self.n_patients, dtype=np.int64), np.diff(self.stage1.patient_offsets)
        )

    @cached_property
    def visit_index(self) -> npt.NDArray[np.int32]:
        """Position of every visit inside its patient (0 = first visit)."""
        po = self.stage1.patient_offsets
        starts = np.repeat(po[:-1], np.diff(po))
        return (np.arange(self.n_visits, dtype=np.int64) - starts).astype(np.int32)

    # --- views ----------------------------------------------------------------------------
    def categories_of(self, patient: int) -> list[list[str]]:
        """Category strings of each visit of local patient ``patient`` (a code that the model
        keeps as a category of its own shows its coding-system category: ``401``)."""
        return self._strings_of(patient, self.stage1.categories, self.hierarchy.parent_labels)

    def codes_of(self, patient: int) -> list[list[str]]:
        """Full code strings of each visit of local patient ``patient``."""
        return self._strings_of(patient, self.codes, self.hierarchy.codes)

    def _strings_of(
        self, patient: int, ids: npt.NDArray[np.int32], names: tuple[str, ...]
    ) -> list[list[str]]:
        if not 0 <= patient < self.n_patients:
            raise IndexError(f"patient: {patient} out of range 0..{self.n_patients - 1}")
        po, vo = self.stage1.patient_offsets, self.stage1.visit_offsets
        return [
            [names[i] for i in ids[vo[v] : vo[v + 1]].tolist()]
            for v in range(int(po[patient]), int(po[patient + 1]))
        ]

    def to_cohort(self) -> Cohort:
        """The batch as a :class:`~hiergen.cohort.Cohort` over the hierarchy's code vocabulary."""
        s1 = self.stage1
        return Cohort(
            patient_ids=self.patient_ids,
            patient_offsets=s1.patient_offsets.astype(np.int64, copy=False),
            visit_offsets=s1.visit_offsets.astype(np.int64, copy=False),
            codes=self.codes.astype(np.int32, copy=False),
            vocab=self.hierarchy.codes,
            sex=s1.visit_sex.astype(np.int8, copy=False),
            age=s1.visit_age.astype(np.float32, copy=False),
        )

    def to_arrow(self) -> pa.Table:
        """The flat long table: one row per code with patient_id, visit_index, age (at the
        visit), sex (``M``/``F``), category and code (dictionary-encoded strings)."""
        import pyarrow as pa

        s1 = self.stage1
        lengths = np.diff(s1.visit_offsets)
        visit_patient = self.visit_patient
        patient_id = np.repeat(visit_patient + self.first_id, lengths)
        sex = np.repeat(s1.sex[visit_patient], lengths).astype(np.int8)
        return pa.table(
            {
                "patient_id": pa.array(patient_id, pa.int64()),
                "visit_index": pa.array(np.repeat(self.visit_index, lengths), pa.int32()),
                "age": pa.array(np.repeat(s1.visit_age, lengths).astype(np.float32), pa.float32()),
                "sex": pa.DictionaryArray.from_arrays(
                    pa.array(sex, pa.int8()), pa.array(SEX_LABELS, pa.string())
                ),
                "category": _category_column(self.hierarchy, s1.categories),
                "code": pa.DictionaryArray.from_arrays(
                    pa.array(self.codes, pa.int32()), _string_array(self.hierarchy, "codes")
                ),
            }
        )


_STRING_ARRAYS: weakref.WeakKeyDictionary[Hierarchy, dict[str, pa.Array]] = (
    weakref.WeakKeyDictionary()
)


def _category_column(hierarchy: Hierarchy, categories: npt.NDArray[np.int32]) -> pa.Array:
    """Dictionary-encoded coding-system categories (:attr:`Hierarchy.parent_labels`) of
    ``categories``; a split-off code and its parent category share one dictionary entry."""
    import pyarrow as pa

    cache = _STRING_ARRAYS.setdefault(hierarchy, {})
    labels = cache.get("parent_labels")
    index = cache.get("parent_index")
    if labels is None or index is None:
        names, inverse = np.unique(np.asarray(hierarchy.parent_labels), return_inverse=True)
        labels = cache["parent_labels"] = pa.array(names.tolist(), pa.string())
        index = cache["parent_index"] = pa.array(inverse.astype(np.int32), pa.int32())
    ids = np.asarray(index)[categories]
    return pa.DictionaryArray.from_arrays(pa.array(ids, pa.int32()), labels)


def _string_array(hierarchy: Hierarchy, which: str) -> pa.Array:
    """The hierarchy's category or code strings as an Arrow array (cached per hierarchy)."""
    import pyarrow as pa

    cache = _STRING_ARRAYS.setdefault(hierarchy, {})
    arr = cache.get(which)
    if arr is None:
        arr = cache[which] = pa.array(getattr(hierarchy, which), pa.string())
    return arr
