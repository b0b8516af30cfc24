"""``stratified``: one frequency table per sex x age-band stratum, pooled where data is thin."""

from __future__ import annotations

import numpy as np

from hiergen.cohort import Cohort
from hiergen.demographics import N_STRATA, stratum
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.records import CodeWeights
from hiergen.weighting._arrays import (
    nonneg_float,
    nonneg_int,
    normalise_blocks,
    require_cohort,
    row_code_ids,
)


def build_stratified(
    hierarchy: Hierarchy,
    cohort: Cohort | None,
    *,
    min_visits: int = 20,
    prior: float = 0.0,
) -> CodeWeights:
    """A ``(N_STRATA, n_codes)`` table: row ``s`` is the frequency of each code in stratum ``s``
    (:func:`hiergen.demographics.stratum`), plus ``prior`` per code.

    For a category that fewer than ``min_visits`` visits of stratum ``s`` hold (at least one),
    row ``s`` uses the pooled counts of all strata instead. Categories never seen are uniform.
    """
    threshold = max(nonneg_int("stratified", "min_visits", min_visits), 1)
    p = nonneg_float("stratified", "prior", prior)
    data = require_cohort(cohort, "stratified")
    n_codes, n_cat = hierarchy.n_codes, hierarchy.n_categories
    code_ids = row_code_ids(hierarchy, data).astype(np.int64)
    row_visit = np.repeat(np.arange(data.n_visits, dtype=np.int64), data.visit_lengths)
    visit_stratum = stratum(data.sex, data.age).astype(np.int64)
    row_stratum = visit_stratum[row_visit]

    counts = np.bincount(
        row_stratum * n_codes + code_ids, minlength=N_STRATA * n_codes
    ).astype(np.float64).reshape(N_STRATA, n_codes)
    pooled = counts.sum(axis=0)

    # Visits of each stratum holding at least one code of each category.
    row_cat = hierarchy.code_category[code_ids].astype(np.int64)
    visit_cat = np.unique(row_visit * n_cat + row_cat)
    vc_stratum = visit_stratum[visit_cat // n_cat]
    support = np.bincount(
        vc_stratum * n_cat + visit_cat % n_cat, minlength=N_STRATA * n_cat
    ).reshape(N_STRATA, n_cat)

    own = np.repeat(support >= threshold, np.diff(hierarchy.offsets), axis=1)
    table = np.where(own, counts, pooled[None, :]) + p
    params = {"min_visits": int(min_visits), "prior": p}
    return CodeWeights(normalise_blocks(table, hierarchy.offsets), params)
