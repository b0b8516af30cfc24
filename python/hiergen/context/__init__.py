"""Context-aware Stage 2: a category's code drawn given the codes already drawn in the visit.

:func:`build_context_tables` learns, from a training cohort, the code distribution of each
category given a context code in the visit; :func:`context_index` compiles them into the
C++ sampler (:class:`hiergen._core.ContextIndex`); :func:`sample_visits_reference` is the
numpy reference of the same rule. The ``context`` weighting strategy (plugin) builds both
the stratified fallback weights and the tables.
"""

from __future__ import annotations

from hiergen.context.reference import sample_visits_reference, visit_order
from hiergen.context.sampler import context_index
from hiergen.context.storage import as_stored, load_context_tables, save_context_tables
from hiergen.context.tables import ORDERS, ContextTables, build_context_tables

__all__ = [
    "ORDERS",
    "as_stored",
    "ContextTables",
    "build_context_tables",
    "context_index",
    "load_context_tables",
    "sample_visits_reference",
    "save_context_tables",
    "visit_order",
]
