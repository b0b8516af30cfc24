"""The interface every Stage-1 generator implements, and the arrays it hands to Stage 2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy


@dataclass(frozen=True, eq=False)
class CategoryPatients:
    """Generated patients as CSR arrays of category ids (what Stage 2 consumes).

    A visit holds a *multiset* of category ids: a category repeated k times asks Stage 2 for k
    distinct codes of it.

    Attributes:
        sex: int8 per patient (0 = male, 1 = female).
        age: float32 per patient, the requested age (at the first visit), in years.
        patient_offsets: int64, ``n_patients + 1``, into visits.
        visit_offsets: int64, ``n_visits + 1``, into ``categories``.
        categories: int32 category ids of the model's hierarchy.
        visit_age: float32 per visit, in years.
    """

    sex: npt.NDArray[np.int8]
    age: npt.NDArray[np.float32]
    patient_offsets: npt.NDArray[np.int64]
    visit_offsets: npt.NDArray[np.int64]
    categories: npt.NDArray[np.int32]
    visit_age: npt.NDArray[np.float32]

    @property
    def n_patients(self) -> int:
        return int(self.patient_offsets.size - 1)

    @property
    def n_visits(self) -> int:
        return int(self.visit_offsets.size - 1)

    @property
    def visit_sex(self) -> npt.NDArray[np.int8]:
        return np.repeat(self.sex, np.diff(self.patient_offsets))


@runtime_checkable
class Stage1Generator(Protocol):
    """A Stage-1 model. Implementations are registered through the ``hiergen_generators`` hook.

    ``fit`` learns from a cohort whose codes are mapped to the categories of ``hierarchy``;
    ``sample`` generates one patient per (age, sex) pair, reproducibly for a given seed;
    ``save``/``load`` use safetensors + JSON in a directory (never pickle).
    """

    name: ClassVar[str]

    def fit(self, cohort: Cohort, hierarchy: Hierarchy, *, seed: int = 0) -> None: ...

    def sample(
        self, age: npt.ArrayLike, sex: npt.ArrayLike, *, seed: int
    ) -> CategoryPatients: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Stage1Generator: ...
