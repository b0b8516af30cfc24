"""Plausibility: codes impossible for the patient's sex or age.

The rules work on ICD-9-CM categories (3 characters, ``V``/``E`` codes included). They are
deliberately narrow - only codes no coder should ever give such a patient - and the real data's
own rate is reported beside the synthetic one as the baseline (real files hold a few coding
errors).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.demographics import FEMALE, MALE
from hiergen.evaluate._visits import I64, category_strings, view

#: Categories only a woman can hold: female genital neoplasms (179-184, 218-221), disorders of
#: the female genital tract (614-629), pregnancy and childbirth (630-679), pregnancy and
#: delivery V codes (V22-V24, V27, V28).
FEMALE_ONLY: Final = (
    ("179", "184"), ("218", "221"), ("614", "629"), ("630", "679"),
    ("V22", "V24"), ("V27", "V28"),
)
#: Categories only a man can hold: prostate, testis, penis neoplasms (185-187), benign male
#: genital neoplasms (222), disorders of the male genital organs (600-608).
MALE_ONLY: Final = (("185", "187"), ("222", "222"), ("600", "608"))
#: Categories of a newborn only, impossible from age 1 year: liveborn infants (V30-V39) and
#: conditions originating in the perinatal period (760-779).
NEWBORN_ONLY: Final = (("V30", "V39"), ("760", "779"))
#: Pregnancy categories, impossible before age 10.
PREGNANCY: Final = (("630", "679"), ("V22", "V24"), ("V27", "V27"))
NEWBORN_MAX_AGE: Final = 1.0
PREGNANCY_MIN_AGE: Final = 10.0


def in_ranges(categories: list[str], ranges: tuple[tuple[str, str], ...]) -> npt.NDArray[np.bool_]:
    """Which categories fall in one of the inclusive ranges.

    Ranges compare the first three characters and never mix kinds (``"600"`` vs ``"V60"``).
    """
    out = np.zeros(len(categories), dtype=bool)
    for i, cat in enumerate(categories):
        head = cat[:3]
        out[i] = any(
            head[:1].isdigit() == lo[:1].isdigit()
            and (lo[:1].isdigit() or head[:1] == lo[:1])
            and lo <= head <= hi
            for lo, hi in ranges
        )
    return out


def _visit_flags(cohort: Cohort, ranges: tuple[tuple[str, str], ...]) -> npt.NDArray[np.bool_]:
    """Per visit: does it hold a code of a category in ``ranges``?"""
    v = view(cohort)
    items, offsets = v.categories
    uniq, inverse = np.unique(items, return_inverse=True)
    flag = in_ranges(category_strings(uniq), ranges)[inverse]
    owner: I64 = np.repeat(np.arange(v.n_visits, dtype=np.int64), np.diff(offsets))
    return np.bincount(owner[flag], minlength=v.n_visits) > 0


def impossible_visits(cohort: Cohort) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(sex-impossible, age-impossible) mask over the visits of ``cohort``."""
    sex = np.asarray(cohort.sex)
    age = np.asarray(cohort.age, dtype=np.float64)
    sex_bad = (_visit_flags(cohort, FEMALE_ONLY) & (sex == MALE)) | (
        _visit_flags(cohort, MALE_ONLY) & (sex == FEMALE)
    )
    age_bad = (_visit_flags(cohort, NEWBORN_ONLY) & (age >= NEWBORN_MAX_AGE)) | (
        _visit_flags(cohort, PREGNANCY) & (age < PREGNANCY_MIN_AGE)
    )
    return sex_bad, age_bad


def plausibility(real: Cohort, synthetic: Cohort, **_: Any) -> dict[str, float]:
    """Share of visits holding a sex- or age-impossible code, synthetic and real."""
    out: dict[str, float] = {}
    for suffix, cohort in (("", synthetic), ("_real", real)):
        sex_bad, age_bad = impossible_visits(cohort)
        n = max(cohort.n_visits, 1)
        out[f"sex_impossible_rate{suffix}"] = float(sex_bad.sum()) / n
        out[f"age_impossible_rate{suffix}"] = float(age_bad.sum()) / n
    return out
