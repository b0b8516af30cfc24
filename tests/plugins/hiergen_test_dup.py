"""Test plugin claiming the built-in weighting name ``uniform``."""

from __future__ import annotations

import hiergen
from hiergen.plugins import WeightingSpec
from hiergen.weighting import build_uniform


@hiergen.hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    return [WeightingSpec("uniform", build_uniform, "a second 'uniform'")]
