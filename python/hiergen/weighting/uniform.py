"""``uniform``: every code of a category equally likely."""

from __future__ import annotations

import numpy as np

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.records import CodeWeights
from hiergen.weighting._arrays import as_rows, normalise_blocks


def build_uniform(hierarchy: Hierarchy, cohort: Cohort | None = None) -> CodeWeights:
    """Equal weights inside each category (the cohort is not needed)."""
    weights = normalise_blocks(np.ones(hierarchy.n_codes), hierarchy.offsets)
    return CodeWeights(as_rows(weights), {})
