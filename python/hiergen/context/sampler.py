"""Compile context tables into the C++ sampler (:class:`hiergen._core.ContextIndex`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen._compiled import compiled_module
from hiergen.context.tables import ContextTables


def context_index(
    base: Any | npt.ArrayLike,
    tables: ContextTables,
    *,
    zero_weight: str = "uniform",
    core: Any = None,
) -> Any:
    """A ``ContextIndex`` over ``base`` (a ``CategoryIndex`` or its weights) and ``tables``.

    ``core`` is the compiled module to use (default ``hiergen._core``).
    """
    mod = core if core is not None else compiled_module()
    if not isinstance(base, mod.CategoryIndex):
        weights = np.asarray(base, dtype=np.float64)
        base = mod.CategoryIndex(tables.offsets, weights, zero_weight=zero_weight)
    if base.n_codes != tables.n_codes or base.n_categories != tables.n_categories:
        raise ValueError(
            f"tables: built for {tables.n_categories} categories / {tables.n_codes} codes, "
            f"the index has {base.n_categories} / {base.n_codes}"
        )
    return mod.ContextIndex(
        base, tables.category, tables.context, tables.score, tables.weights, tables.rank
    )
