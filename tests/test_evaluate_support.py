"""Hand-made cohorts shared by the evaluation tests (no tests here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hiergen.cohort import Cohort


def make_cohort(
    patients: Sequence[Sequence[Sequence[str]]],
    sex: Sequence[int] | None = None,
    age: Sequence[float] | None = None,
) -> Cohort:
    """patients -> visits -> codes; sex and age per patient (default male, 50 years)."""
    vocab: dict[str, int] = {}
    codes: list[int] = []
    visit_lengths: list[int] = []
    visits_per_patient: list[int] = []
    visit_sex: list[int] = []
    visit_age: list[float] = []
    for p, visits in enumerate(patients):
        visits_per_patient.append(len(visits))
        for visit in visits:
            distinct = list(dict.fromkeys(visit))
            codes.extend(vocab.setdefault(c, len(vocab)) for c in distinct)
            visit_lengths.append(len(distinct))
            visit_sex.append(0 if sex is None else sex[p])
            visit_age.append(50.0 if age is None else age[p])
    vo = np.concatenate([[0], np.cumsum(visit_lengths)]).astype(np.int64)
    po = np.concatenate([[0], np.cumsum(visits_per_patient)]).astype(np.int64)
    return Cohort(
        patient_ids=np.arange(len(patients)),
        patient_offsets=po,
        visit_offsets=vo,
        codes=np.asarray(codes, dtype=np.int32),
        vocab=tuple(vocab),
        sex=np.asarray(visit_sex, dtype=np.int8),
        age=np.asarray(visit_age, dtype=np.float32),
    )


#: Valid ICD-9-CM codes (several per category) so that the loaders keep them.
REAL_CODES = (
    "401.9", "401.1", "401.0", "250.00", "250.01", "250.02", "250.40", "272.4", "272.0",
    "272.2", "428.0", "428.1", "428.9", "427.31", "427.32", "427.1", "414.01", "414.00",
    "414.8", "584.9", "584.5", "585.9", "585.3", "V30.00", "V30.01", "V05.3", "V15.82",
    "V58.61", "V45.81", "E849.7", "E849.0", "E888.9", "E878.1", "530.81", "530.10", "496",
    "491.21", "486", "038.9", "995.91", "599.0", "285.9", "285.1", "244.9", "311", "300.00",
    "305.1", "780.79", "780.2", "786.50", "786.59", "789.00", "276.51", "276.1", "276.8",
    "787.01", "562.10", "574.20", "715.90", "733.00",
)


def random_cohort(
    n_visits: int, *, seed: int, n_codes: int = 60, max_len: int = 8, correlated: bool = True
) -> Cohort:
    """One visit per patient; codes ``C<i>.1``-style. With ``correlated``, visits are built
    from a few fixed bundles so that pairs co-occur far more often than by chance."""
    rng = np.random.default_rng(seed)
    vocab = list(REAL_CODES[:n_codes])
    weights = 1.0 / np.arange(1, n_codes + 1)
    weights /= weights.sum()
    structure = np.random.default_rng(12345)  # the same bundles for every seed
    bundles = [structure.choice(n_codes, size=4, replace=False, p=weights) for _ in range(12)]
    patients = []
    for _ in range(n_visits):
        if correlated:
            chosen = set(bundles[rng.integers(len(bundles))][: rng.integers(2, 5)].tolist())
            if rng.random() < 0.5:
                chosen.add(int(rng.choice(n_codes, p=weights)))
        else:
            k = int(rng.integers(1, max_len + 1))
            chosen = set(rng.choice(n_codes, size=k, replace=False, p=weights).tolist())
        patients.append([[vocab[i] for i in sorted(chosen)]])
    sex = rng.integers(0, 2, n_visits).tolist()
    age = rng.uniform(0, 90, n_visits).tolist()
    return make_cohort(patients, sex, age)
