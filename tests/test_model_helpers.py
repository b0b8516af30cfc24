"""Helpers shared by the model, generation, writer and CLI tests: a small hand-made cohort
and a model trained on it (no real data needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from hiergen.cohort import Cohort

#: A hand-written vocabulary: several categories, some with many codes, one E code.
VOCAB = (
    "401.1", "401.9", "250.00", "250.01", "250.02", "428.0", "428.1", "414.01", "427.31",
    "V30.00", "V30.01", "E888.9", "E849.7", "650", "648.91", "600.00", "272.0", "272.4",
)


def small_cohort(n_patients: int = 400, seed: int = 0) -> Cohort:
    """Random patients with 1-3 visits of 1-5 distinct codes each."""
    rng = np.random.default_rng(seed)
    visits = rng.integers(1, 4, n_patients)
    po = np.zeros(n_patients + 1, dtype=np.int64)
    np.cumsum(visits, out=po[1:])
    n_visits = int(po[-1])
    lengths = rng.integers(1, 6, n_visits)
    vo = np.zeros(n_visits + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    p = np.linspace(2.0, 0.3, len(VOCAB))
    p /= p.sum()
    codes = np.concatenate(
        [rng.choice(len(VOCAB), size=k, replace=False, p=p) for k in lengths]
    ).astype(np.int32)
    sex = np.repeat(rng.integers(0, 2, n_patients), visits).astype(np.int8)
    base_age = rng.uniform(0, 95, n_patients)
    age = (np.repeat(base_age, visits) + rng.uniform(0, 2, n_visits)).astype(np.float32)
    return Cohort(
        patient_ids=np.arange(n_patients),
        patient_offsets=po,
        visit_offsets=vo,
        codes=codes,
        vocab=VOCAB,
        sex=sex,
        age=age,
    )


def train_small_model(out_dir: Path, weighting: str = "frequency") -> Path:
    from hiergen.train import train

    train(small_cohort(), out_dir, generator="markov", weighting=weighting,
          generator_params={"order": 1})
    return out_dir


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_use_threads_caps_both_stages() -> None:
    from types import SimpleNamespace

    from hiergen.model import HiergenModel

    calls: list[int | None] = []
    stub = SimpleNamespace(set_threads=calls.append)
    model = HiergenModel.__new__(HiergenModel)
    model.generator = stub
    model.use_threads(1)
    assert model.threads == 1 and calls == [1]
    model.generator = SimpleNamespace()  # no set_threads: only Stage 2 is capped
    model.use_threads(None)
    assert model.threads is None and calls == [1]
    with pytest.raises(ValueError, match="threads"):
        model.use_threads(0)
