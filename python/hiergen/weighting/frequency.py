"""``frequency`` and ``tempered``: weights from training counts."""

from __future__ import annotations

import numpy as np

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.records import CodeWeights
from hiergen.weighting._arrays import (
    as_rows,
    code_counts,
    nonneg_float,
    normalise_blocks,
    require_cohort,
)


def build_frequency(hierarchy: Hierarchy, cohort: Cohort | None) -> CodeWeights:
    """Weight of a code = its share of its category's count in the training cohort.

    Codes never seen get weight 0; a category never seen at all is uniform.
    """
    counts = code_counts(hierarchy, require_cohort(cohort, "frequency"))
    return CodeWeights(as_rows(normalise_blocks(counts, hierarchy.offsets)), {})


def build_tempered(
    hierarchy: Hierarchy, cohort: Cohort | None, *, alpha: float = 0.5
) -> CodeWeights:
    """Weight of a seen code = ``count ** alpha`` (normalised in its category).

    ``alpha = 1`` is ``frequency``; ``alpha < 1`` flattens the distribution toward the rarer
    seen codes; ``alpha = 0`` is uniform over the codes seen. Unseen codes keep weight 0; a
    category never seen at all is uniform.
    """
    a = nonneg_float("tempered", "alpha", alpha)
    counts = code_counts(hierarchy, require_cohort(cohort, "tempered"))
    seen = counts > 0
    weights = np.zeros_like(counts)
    weights[seen] = counts[seen] ** a
    return CodeWeights(as_rows(normalise_blocks(weights, hierarchy.offsets)), {"alpha": a})
