"""``smoothed``: frequency plus a prior that gives every code of the hierarchy some weight.

Use it with a hierarchy that holds every valid ICD-9-CM code of each category (widened to the
v32 code list), so that valid codes absent from the training data can still be drawn.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.records import CodeWeights
from hiergen.weighting._arrays import (
    FloatArray,
    as_rows,
    block_sums,
    code_counts,
    nonneg_float,
    normalise_blocks,
    require_cohort,
)

METHODS = ("additive", "hierarchical")


def subcategory_key(code: str, category: str) -> str:
    """The node a code hangs from below its category: ``250.01 -> 250.0``; else the category.

    ICD-9-CM five-character codes (two digits after the dot) share a four-character parent;
    four-character codes and E codes hang directly from their category.
    """
    head, dot, tail = code.partition(".")
    if dot and len(tail) == 2 and not head.startswith("E"):
        return code[:-1]
    return category


def subcategory_groups(hierarchy: Hierarchy) -> npt.NDArray[np.int64]:
    """Group id of each code (codes sharing a parent node); groups never span categories."""
    cat_of = hierarchy.code_category
    keys = [
        f"{cat_of[i]}|{subcategory_key(code, hierarchy.categories[cat_of[i]])}"
        for i, code in enumerate(hierarchy.codes)
    ]
    _, inverse = np.unique(np.asarray(keys), return_inverse=True)
    return inverse.astype(np.int64).reshape(-1)


def hierarchical_prior(hierarchy: Hierarchy, counts: FloatArray, prior: float) -> FloatArray:
    """Base measure (sums to 1 in each category) from smoothed parent-node frequencies.

    A parent node ``g`` of category ``c`` gets ``(n_g + prior) / (n_c + prior * S_c)`` (``S_c``
    nodes in ``c``), shared equally by its codes; an unseen code whose siblings are common
    thus gets more of the prior than one in a node never seen.
    """
    groups = subcategory_groups(hierarchy)
    n_groups = int(groups.max()) + 1 if groups.size else 0
    cat_of = hierarchy.code_category
    group_cat = np.zeros(n_groups, dtype=np.int64)
    group_cat[groups] = cat_of
    group_counts = np.bincount(groups, weights=counts, minlength=n_groups)
    group_sizes = np.bincount(groups, minlength=n_groups).astype(np.float64)
    groups_per_cat = np.bincount(group_cat, minlength=hierarchy.n_categories).astype(np.float64)
    cat_totals = block_sums(counts, hierarchy.offsets)
    denom = cat_totals[group_cat] + prior * groups_per_cat[group_cat]
    group_mass = np.divide(
        group_counts + prior, denom, out=1.0 / groups_per_cat[group_cat], where=denom > 0
    )
    return np.asarray(group_mass[groups] / group_sizes[groups], dtype=np.float64)


def build_smoothed(
    hierarchy: Hierarchy,
    cohort: Cohort | None,
    *,
    prior: float = 0.5,
    method: str = "additive",
) -> CodeWeights:
    """Counts plus ``prior`` pseudo-visits per code of the category.

    ``method="additive"``: each code gets ``count + prior``. ``method="hierarchical"``: the
    category's ``prior * n_codes`` pseudo-visits are spread by :func:`hierarchical_prior`.
    ``prior = 0`` is ``frequency``.
    """
    p = nonneg_float("smoothed", "prior", prior)
    if method not in METHODS:
        raise ValueError(
            f"weighting 'smoothed': parameter method must be one of {', '.join(METHODS)}, "
            f"got {method!r}"
        )
    counts = code_counts(hierarchy, require_cohort(cohort, "smoothed"))
    if method == "additive":
        weights = counts + p
    else:
        sizes = np.diff(hierarchy.offsets).astype(np.float64)
        strength = p * np.repeat(sizes, np.diff(hierarchy.offsets))
        weights = counts + strength * hierarchical_prior(hierarchy, counts, p)
    params = {"prior": p, "method": method}
    return CodeWeights(as_rows(normalise_blocks(weights, hierarchy.offsets)), params)
