"""The columnar cohort: patients -> ordered visits -> distinct codes, as CSR arrays.

No Python object per code: a cohort of 10M diagnosis rows is a few int arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hiergen.hierarchy import Hierarchy

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Cohort:
    """Patients, their visits in order, and the distinct codes of each visit.

    Attributes:
        patient_ids: one id per patient (strings or ints, as in the source data).
        patient_offsets: int64, ``n_patients + 1``; visits of patient ``p`` are
            ``patient_offsets[p]:patient_offsets[p + 1]``.
        visit_offsets: int64, ``n_visits + 1``; codes of visit ``v`` are
            ``codes[visit_offsets[v]:visit_offsets[v + 1]]``.
        codes: int32 ids into ``vocab``; distinct within a visit.
        vocab: normalised dotted ICD-9-CM code strings (``"401.9"``).
        sex: int8 per visit, 0 = male, 1 = female (see :mod:`hiergen.demographics`).
        age: float32 per visit, in years.
        time: ``datetime64[s]`` per visit, or ``None`` where the source has no times.
    """

    patient_ids: npt.NDArray[np.generic]
    patient_offsets: IntArray
    visit_offsets: IntArray
    codes: npt.NDArray[np.int32]
    vocab: tuple[str, ...]
    sex: npt.NDArray[np.int8]
    age: npt.NDArray[np.float32]
    time: npt.NDArray[np.datetime64] | None = None

    def __post_init__(self) -> None:
        self.validate()

    # --- shape --------------------------------------------------------------------------
    @property
    def n_patients(self) -> int:
        return int(self.patient_offsets.size - 1)

    @property
    def n_visits(self) -> int:
        return int(self.visit_offsets.size - 1)

    @property
    def n_rows(self) -> int:
        """Number of (visit, code) diagnosis rows."""
        return int(self.codes.size)

    @property
    def visit_lengths(self) -> IntArray:
        return np.diff(self.visit_offsets)

    @property
    def visits_per_patient(self) -> IntArray:
        return np.diff(self.patient_offsets)

    @property
    def visit_patient(self) -> IntArray:
        """Patient index of every visit."""
        return np.repeat(np.arange(self.n_patients, dtype=np.int64), self.visits_per_patient)

    @property
    def nbytes(self) -> int:
        arrays: list[npt.NDArray[np.generic]] = [
            self.patient_offsets, self.visit_offsets, self.codes, self.sex, self.age,
            self.patient_ids,
        ]
        total = sum(int(a.nbytes) for a in arrays)
        return total + (self.time.nbytes if self.time is not None else 0)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the arrays are inconsistent."""
        po, vo = self.patient_offsets, self.visit_offsets
        if po.ndim != 1 or po.size < 1 or po[0] != 0 or (np.diff(po) < 0).any():
            raise ValueError("patient_offsets: must be non-decreasing and start at 0")
        if vo.ndim != 1 or vo.size < 1 or vo[0] != 0 or (np.diff(vo) < 0).any():
            raise ValueError("visit_offsets: must be non-decreasing and start at 0")
        if po[-1] != vo.size - 1:
            raise ValueError("patient_offsets: last offset must equal the number of visits")
        if vo[-1] != self.codes.size:
            raise ValueError("visit_offsets: last offset must equal the number of codes")
        if self.patient_ids.shape != (po.size - 1,):
            raise ValueError("patient_ids: one id per patient expected")
        n_visits = vo.size - 1
        for name in ("sex", "age"):
            if getattr(self, name).shape != (n_visits,):
                raise ValueError(f"{name}: one value per visit expected")
        if self.time is not None and self.time.shape != (n_visits,):
            raise ValueError("time: one value per visit expected")
        if self.codes.size and (self.codes.min() < 0 or self.codes.max() >= len(self.vocab)):
            raise ValueError("codes: ids must index into vocab")

    # --- views for the two stages -------------------------------------------------------
    def code_ids_in(self, hierarchy: Hierarchy) -> npt.NDArray[np.int32]:
        """The cohort's codes as ids of ``hierarchy`` (``KeyError`` if one is missing).

        Only codes that occur in the cohort need to be in the hierarchy: a subset of a cohort
        (``select_visits``, ``split``) keeps the whole vocabulary.
        """
        used = np.unique(self.codes)
        remap = np.full(len(self.vocab), -1, dtype=np.int32)
        remap[used] = hierarchy.code_ids(self.vocab[i] for i in used.tolist())
        return remap[self.codes]

    def category_ids_in(self, hierarchy: Hierarchy) -> npt.NDArray[np.int32]:
        """Category id of every code row: a visit's category multiset (one per distinct code)."""
        return hierarchy.code_category[self.code_ids_in(hierarchy)]

    def select_visits(self, mask_or_index: npt.ArrayLike) -> Cohort:
        """A cohort of the chosen visits, each its own patient only if it was before.

        Patients keep the visits that remain; patients left with none are removed.
        """
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = np.sort(idx.astype(np.int64))
        lengths = self.visit_lengths[idx]
        starts = self.visit_offsets[idx]
        new_vo = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_vo[1:])
        rows = np.repeat(starts - new_vo[:-1], lengths) + np.arange(new_vo[-1])
        vp = self.visit_patient[idx]
        kept_patients, counts = np.unique(vp, return_counts=True)
        new_po = np.zeros(kept_patients.size + 1, dtype=np.int64)
        np.cumsum(counts, out=new_po[1:])
        return Cohort(
            patient_ids=self.patient_ids[kept_patients],
            patient_offsets=new_po,
            visit_offsets=new_vo,
            codes=self.codes[rows],
            vocab=self.vocab,
            sex=self.sex[idx],
            age=self.age[idx],
            time=None if self.time is None else self.time[idx],
        )

    def select_patients(self, mask_or_index: npt.ArrayLike) -> Cohort:
        """A cohort of the chosen patients with all their visits."""
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = np.sort(idx.astype(np.int64))
        counts = self.visits_per_patient[idx]
        starts = self.patient_offsets[idx]
        total = int(counts.sum())
        cum = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(counts, out=cum[1:])
        visits = np.repeat(starts - cum[:-1], counts) + np.arange(total)
        sub = self.select_visits(visits)
        return Cohort(
            patient_ids=self.patient_ids[idx],
            patient_offsets=cum,
            visit_offsets=sub.visit_offsets,
            codes=sub.codes,
            vocab=self.vocab,
            sex=sub.sex,
            age=sub.age,
            time=sub.time,
        )

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[Cohort, Cohort]:
        """Split by patient with a fixed seed: (train, held-out)."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction: must be in (0, 1), got {test_fraction}")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(self.n_patients)
        n_test = int(round(self.n_patients * test_fraction))
        return self.select_patients(perm[n_test:]), self.select_patients(perm[:n_test])

    # --- persistence (see hiergen.cohort_io) --------------------------------------------
    def save_parquet(self, path: str | Path) -> Path:
        """Write the cohort to a Parquet file (one row per visit)."""
        from hiergen.cohort_io import save_parquet

        return save_parquet(self, path)

    @classmethod
    def load_parquet(cls, path: str | Path) -> Cohort:
        """Read a cohort written by :meth:`save_parquet`."""
        from hiergen.cohort_io import load_parquet

        return load_parquet(path)
