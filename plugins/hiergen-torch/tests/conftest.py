"""Fixtures: a small synthetic cohort with sex- and age-linked categories, and tiny models."""

from __future__ import annotations

import pytest
from torch_testdata import TINY, category, make_cohort

from hiergen import Cohort, Hierarchy
from hiergen_torch.generator import TorchGenerator


@pytest.fixture(scope="session")
def cohort() -> Cohort:
    return make_cohort()


@pytest.fixture(scope="session")
def hierarchy(cohort: Cohort) -> Hierarchy:
    return Hierarchy.from_codes(cohort.vocab, category_of=category)


@pytest.fixture(scope="session", params=["transformer", "lstm"])
def fitted(request: pytest.FixtureRequest, cohort: Cohort, hierarchy: Hierarchy
           ) -> TorchGenerator:
    from hiergen_torch import LSTMGenerator, TransformerGenerator

    cls = TransformerGenerator if request.param == "transformer" else LSTMGenerator
    gen = cls(progress=False, threads=1, **TINY)
    gen.fit(cohort, hierarchy, seed=0)
    return gen
