"""Test data of the hiergen-torch tests: a synthetic cohort and tiny model settings."""

from __future__ import annotations

import numpy as np

from hiergen import Cohort

COMMON = ["401.9", "401.1", "250.00", "250.01", "414.01", "428.0", "427.31", "272.4",
          "530.81", "244.9", "311", "786.50"]
FEMALE_ONLY = "650"  # normal delivery
MALE_ONLY = "600.00"  # prostate
NEWBORN = "V30.00"


def category(code: str) -> str:
    return code.split(".", 1)[0]


def make_cohort(n_patients: int = 600, seed: int = 0) -> Cohort:
    """Patients with 1-2 visits of 1-5 codes; 650 only for women 18-40, 600 only for men,
    V30 only for newborns (age 0), alone in its visit."""
    rng = np.random.default_rng(seed)
    vocab = sorted([*COMMON, FEMALE_ONLY, MALE_ONLY, NEWBORN])
    index = {c: i for i, c in enumerate(vocab)}
    weights = 1.0 / np.arange(1, len(COMMON) + 1)
    weights /= weights.sum()
    po, vo = [0], [0]
    codes: list[int] = []
    sexes: list[int] = []
    ages: list[float] = []
    for _ in range(n_patients):
        sex = int(rng.integers(2))
        newborn = rng.random() < 0.15
        age = 0.0 if newborn else float(rng.uniform(18, 90) if sex == 0 else rng.uniform(18, 40))
        for _ in range(1 if newborn else int(rng.integers(1, 3))):
            if newborn:
                visit = [NEWBORN]
            else:
                k = int(rng.integers(1, 5))
                visit = list(rng.choice(COMMON, size=k, replace=False, p=weights))
                if sex == 1 and rng.random() < 0.6:
                    visit.append(FEMALE_ONLY)
                if sex == 0 and rng.random() < 0.6:
                    visit.append(MALE_ONLY)
            codes.extend(index[c] for c in visit)
            vo.append(len(codes))
            sexes.append(sex)
            ages.append(age)
        po.append(len(vo) - 1)
    return Cohort(
        patient_ids=np.arange(n_patients),
        patient_offsets=np.asarray(po, dtype=np.int64),
        visit_offsets=np.asarray(vo, dtype=np.int64),
        codes=np.asarray(codes, dtype=np.int32),
        vocab=tuple(vocab),
        sex=np.asarray(sexes, dtype=np.int8),
        age=np.asarray(ages, dtype=np.float32),
    )


TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2, "epochs": 25, "batch_size": 64,
        "lr": 1e-2, "patience": 4, "dropout": 0.0}
