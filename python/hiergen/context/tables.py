"""Context tables: a category's code distribution given that a context code is in the visit.

For every ordered pair (context code ``d``, code ``x``) of distinct codes sharing a training
visit, ``x`` counts toward the table ``(category(x), d)``. A table is kept when at least
``min_support`` visits hold ``d`` and another code of the category; its weights are the pair
counts shrunk toward the category's pooled distribution (``shrinkage`` pseudo-visits), and its
score is ``support x KL(table || pooled)``: the expected log-likelihood gain of using it.

Tables are stored flat (CSR over their categories' code ranges), sorted by
``(category, context)`` so that ``key = category * n_codes + context`` is a sorted lookup key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.errors import ModelError
from hiergen.hierarchy import Hierarchy

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

#: Canonical orders a visit's categories can be drawn in.
ORDERS = ("frequency", "informative", "pairwise")


@dataclass(frozen=True, eq=False)
class ContextTables:
    """Context tables over a hierarchy of ``offsets`` (see the module docstring).

    Attributes:
        offsets: the hierarchy's category CSR (int64, ``n_categories + 1``).
        category: int32 ``(T,)``, category of each table (sorted, then by context).
        context: int32 ``(T,)``, context code id of each table.
        support: int64 ``(T,)``, training visits holding the context and the category.
        score: float64 ``(T,)``, ``support x KL(table || pooled)``; higher is preferred.
        weights: float64, the tables' weights one after the other; table ``t`` covers the
            codes of ``category[t]`` and sums to 1.
        rank: int32 ``(n_categories,)``, draw order: lower rank is drawn first in a visit.
        params: the parameters used to build them.
    """

    offsets: I64
    category: I32
    context: I32
    support: I64
    score: F64
    weights: F64
    rank: I32
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_tables(self) -> int:
        return int(self.category.size)

    @property
    def n_categories(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def n_codes(self) -> int:
        return int(self.offsets[-1])

    @property
    def table_offsets(self) -> I64:
        """Start of each table in :attr:`weights` (``T + 1`` entries)."""
        sizes = np.diff(self.offsets)[self.category]
        out = np.zeros(self.n_tables + 1, dtype=np.int64)
        np.cumsum(sizes, out=out[1:])
        return out

    @property
    def keys(self) -> I64:
        """Sorted lookup keys ``category * n_codes + context``."""
        return self.category.astype(np.int64) * self.n_codes + self.context

    @property
    def nbytes(self) -> int:
        arrays = (self.category, self.context, self.support, self.score, self.weights, self.rank)
        return int(sum(a.nbytes for a in arrays))

    def validate(self) -> None:
        """``ModelError`` naming the array when the tables are inconsistent."""
        t = self.category.size
        for name in ("context", "support", "score"):
            if getattr(self, name).shape != (t,):
                raise ModelError(f"context tables: {name} must have one entry per table ({t})")
        if self.rank.shape != (self.n_categories,):
            raise ModelError(f"context tables: rank must have {self.n_categories} entries")
        if t and (self.category.min() < 0 or self.category.max() >= self.n_categories):
            raise ModelError("context tables: category ids out of range")
        if t and (self.context.min() < 0 or self.context.max() >= self.n_codes):
            raise ModelError("context tables: context code ids out of range")
        keys = self.keys
        if t and (np.diff(keys) <= 0).any():
            raise ModelError("context tables: (category, context) must be sorted and unique")
        expected = int(self.table_offsets[-1])
        if self.weights.shape != (expected,):
            raise ModelError(
                f"context tables: weights must hold {expected} values, got {self.weights.shape}"
            )
        if not np.isfinite(self.weights).all() or (self.weights < 0).any():
            raise ModelError("context tables: weights must be finite and >= 0")
        if not np.isfinite(self.score).all():
            raise ModelError("context tables: scores must be finite")

    def lookup(self, categories: npt.ArrayLike, contexts: npt.ArrayLike) -> I64:
        """Table id of each (category, context code) pair, -1 where there is none."""
        keys = np.asarray(categories, dtype=np.int64) * self.n_codes + np.asarray(
            contexts, dtype=np.int64
        )
        table_keys = self.keys
        if table_keys.size == 0:
            return np.full(keys.shape, -1, dtype=np.int64)
        pos = np.searchsorted(table_keys, keys)
        pos_c = np.minimum(pos, table_keys.size - 1)
        return np.where(table_keys[pos_c] == keys, pos_c, -1).astype(np.int64)

    def table(self, category: int, context: int) -> F64:
        """Weights of table (category, context) over the category's codes (``KeyError``)."""
        t = int(self.lookup([category], [context])[0])
        if t < 0:
            raise KeyError(f"no context table for category {category} and context code {context}")
        to = self.table_offsets
        return self.weights[to[t] : to[t + 1]]


def _check_int(name: str, value: Any, minimum: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise ValueError(
            f"context: parameter {name} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def _check_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number < 0:
        raise ValueError(f"context: parameter {name} must be a finite number >= 0, got {value!r}")
    return number


def visit_code_ids(hierarchy: Hierarchy, cohort: Cohort) -> tuple[I64, I64]:
    """Code ids (in ``hierarchy``) of every row and the visit of every row."""
    from hiergen.weighting._arrays import row_code_ids

    ids = row_code_ids(hierarchy, cohort).astype(np.int64)
    row_visit = np.repeat(np.arange(cohort.n_visits, dtype=np.int64), cohort.visit_lengths)
    return ids, row_visit


def ordered_pairs(ids: I64, offsets: I64) -> tuple[I64, I64, I64]:
    """(visit, first, second) of every ordered pair of distinct rows within each visit."""
    lengths = np.diff(offsets)
    visits, firsts, seconds = [], [], []
    for k in np.unique(lengths[lengths >= 2]):
        vs = np.flatnonzero(lengths == k)
        mat = ids[offsets[vs][:, None] + np.arange(k)]
        i, j = np.nonzero(~np.eye(int(k), dtype=bool))
        firsts.append(mat[:, i].ravel())
        seconds.append(mat[:, j].ravel())
        visits.append(np.repeat(vs, i.size))
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(visits), np.concatenate(firsts), np.concatenate(seconds)


#: Ordered pairs per chunk of :func:`pair_chunks` (bounds the memory of building tables).
PAIRS_PER_CHUNK = 4_000_000


def pair_chunks(ids: I64, offsets: I64,
                max_pairs: int | None = None) -> Iterator[tuple[I64, I64, I64]]:
    """:func:`ordered_pairs` of consecutive runs of visits, each of about ``max_pairs`` pairs
    (default ``PAIRS_PER_CHUNK``; a visit of more pairs alone)."""
    if max_pairs is None:
        max_pairs = PAIRS_PER_CHUNK
    lengths = np.diff(offsets)
    ends = np.cumsum(lengths * (lengths - 1))
    v0, n = 0, lengths.size
    while v0 < n:
        base = ends[v0 - 1] if v0 else 0
        v1 = max(int(np.searchsorted(ends, base + max_pairs, side="right")), v0 + 1)
        v1 = min(v1, n)
        visit, first, second = ordered_pairs(ids[offsets[v0]:offsets[v1]],
                                             offsets[v0:v1 + 1] - offsets[v0])
        yield visit + v0, first, second
        v0 = v1


def category_rank(
    hierarchy: Hierarchy,
    cohort: Cohort,
    order: str = "frequency",
    score_by: F64 | None = None,
    pair_edges: tuple[I64, I64, F64] | None = None,
) -> I32:
    """Draw order of the categories: rank 0 is drawn first.

    ``frequency``: most visits first. ``informative``: categories whose codes are the most
    useful context for the others (sum of their tables' scores as context, ``score_by``)
    first, ties by frequency. ``pairwise``: an order learned from ``pair_edges`` (a, b, w): w
    the score of a table of category b whose context is a code of category a (what drawing a
    before b gains): the greedy heuristic for a maximum acyclic subgraph (Eades, Lin &
    Smyth 1993) repeatedly takes the category whose remaining outgoing weight exceeds its
    incoming weight the most, ties by frequency.
    """
    if order not in ORDERS:
        raise ValueError(f"context: parameter order must be one of {ORDERS}, got {order!r}")
    ids, row_visit = visit_code_ids(hierarchy, cohort)
    cats = hierarchy.code_category[ids].astype(np.int64)
    visit_cat = np.unique(row_visit * hierarchy.n_categories + cats) % hierarchy.n_categories
    freq = np.bincount(visit_cat, minlength=hierarchy.n_categories).astype(np.float64)
    by_frequency = np.lexsort((np.arange(freq.size), -freq))
    if order == "informative" and score_by is not None:
        perm = np.lexsort((np.arange(freq.size), -freq, -score_by))
    elif order == "pairwise" and pair_edges is not None:
        perm = _greedy_acyclic_order(*pair_edges, by_frequency)
    else:
        perm = by_frequency
    rank = np.empty(hierarchy.n_categories, dtype=np.int32)
    rank[perm] = np.arange(hierarchy.n_categories, dtype=np.int32)
    return rank


def _greedy_acyclic_order(src: I64, dst: I64, weight: F64, tie_order: I64) -> I64:
    """Order of the nodes ``tie_order`` holds, of a weighted digraph given by its edges
    (``src[e] -> dst[e]``, weight ``weight[e]``; repeats add up, self-loops do not count), that
    keeps much weight pointing forward: take the node with the largest outgoing minus incoming
    weight among those left, ties by their place in ``tie_order``. Memory grows with the edges,
    not with the square of the nodes."""
    n = tie_order.size
    keep = src != dst
    src, dst, weight = src[keep], dst[keep], np.asarray(weight, dtype=np.float64)[keep]
    tie_rank = np.empty(n, dtype=np.int64)
    tie_rank[tie_order] = np.arange(n)
    balance = np.bincount(src, weight, n) - np.bincount(dst, weight, n)
    by_src, by_dst = np.argsort(src, kind="stable"), np.argsort(dst, kind="stable")
    src_start = np.searchsorted(src[by_src], np.arange(n + 1))
    dst_start = np.searchsorted(dst[by_dst], np.arange(n + 1))
    left = np.ones(n, dtype=bool)
    perm = np.empty(n, dtype=np.int64)
    # Balances within rounding of each other are ties (updates leave residues near 0).
    tol = 1e-9 * float(weight.sum()) if weight.size else 0.0
    for k in range(n):
        gain = np.where(left, balance, -np.inf)
        tied = np.flatnonzero(gain >= gain.max() - tol)
        pick = tied[np.argmin(tie_rank[tied])]
        perm[k] = pick
        left[pick] = False
        # Edges of the node taken no longer count for the nodes left.
        out = by_src[src_start[pick]:src_start[pick + 1]]
        np.add.at(balance, dst[out], weight[out])
        into = by_dst[dst_start[pick]:dst_start[pick + 1]]
        np.subtract.at(balance, src[into], weight[into])
    return perm


def build_context_tables(
    hierarchy: Hierarchy,
    cohort: Cohort,
    *,
    min_support: int = 30,
    shrinkage: float = 5.0,
    min_score: float = 0.0,
    max_tables: int = 0,
    order: str = "frequency",
) -> ContextTables:
    """Context tables from a training cohort (see the module docstring).

    Args:
        min_support: keep a (category, context) table only when at least this many visits
            hold the context code and another code of the category.
        shrinkage: pseudo-visits of the pooled distribution added to every table.
        min_score: drop tables scoring below this (``support x KL``, in nats).
        max_tables: keep only the best-scoring tables (0: no limit); bounds memory.
        order: the canonical draw order (:data:`ORDERS`).
    """
    support_min = _check_int("min_support", min_support, 1)
    alpha = _check_float("shrinkage", shrinkage)
    score_min = _check_float("min_score", min_score)
    limit = _check_int("max_tables", max_tables, 0)
    if order not in ORDERS:
        raise ValueError(f"context: parameter order must be one of {ORDERS}, got {order!r}")
    n_codes, n_cat = hierarchy.n_codes, hierarchy.n_categories
    code_cat = hierarchy.code_category.astype(np.int64)
    ids, _ = visit_code_ids(hierarchy, cohort)
    pooled = np.bincount(ids, minlength=n_codes).astype(np.float64)
    cat_tot = np.add.reduceat(pooled, hierarchy.offsets[:-1])
    sizes = np.diff(hierarchy.offsets)
    base = np.where(
        np.repeat(cat_tot, sizes) > 0,
        pooled / np.where(np.repeat(cat_tot, sizes) > 0, np.repeat(cat_tot, sizes), 1.0),
        np.repeat(1.0 / sizes, sizes),
    )

    n_keys = n_cat * n_codes
    # Support: distinct visits per (category, context), chunk by chunk of visits.
    keys, support = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for visit, ctx, code in pair_chunks(ids, cohort.visit_offsets):
        vk = np.unique(visit * n_keys + code_cat[code] * n_codes + ctx)
        k, c = np.unique(vk % n_keys, return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, k]), return_inverse=True)
        support = np.bincount(inverse, weights=np.concatenate([support, c]),
                              minlength=keys.size).astype(np.int64)
    keep = support >= support_min
    keys, support = keys[keep], support[keep]
    t_cat = (keys // n_codes).astype(np.int64)
    t_size = sizes[t_cat]
    t_off = np.zeros(keys.size + 1, dtype=np.int64)
    np.cumsum(t_size, out=t_off[1:])
    # Pair counts of (table, code) for the kept tables.
    counts = np.zeros(int(t_off[-1]), dtype=np.float64)
    for _, ctx, code in pair_chunks(ids, cohort.visit_offsets) if keys.size else ():
        cat = code_cat[code]
        table_key = cat * n_codes + ctx
        t_of_pair = np.minimum(np.searchsorted(keys, table_key), keys.size - 1)
        mask = keys[t_of_pair] == table_key
        flat_pos = t_off[t_of_pair[mask]] + (code[mask] - hierarchy.offsets[cat[mask]])
        counts += np.bincount(flat_pos, minlength=counts.size)
    totals = np.add.reduceat(counts, t_off[:-1]) if keys.size else np.zeros(0)
    table_of_entry = np.repeat(np.arange(keys.size), t_size)
    code_of_entry = (
        np.arange(int(t_off[-1]), dtype=np.int64)
        - t_off[table_of_entry]
        + hierarchy.offsets[t_cat][table_of_entry]
    )
    prior = base[code_of_entry]
    weights = (counts + alpha * prior) / (totals[table_of_entry] + alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        # weights > 0 implies prior > 0: a code in a pair has a pooled count.
        terms = np.where(weights > 0, weights * np.log(weights / np.where(prior > 0, prior, 1)), 0)
    kl = np.add.reduceat(terms, t_off[:-1]) if keys.size else np.zeros(0)
    score = support * np.maximum(kl, 0.0)

    chosen = score >= score_min
    if limit and chosen.sum() > limit:
        cut = np.sort(score[chosen])[::-1][limit - 1]
        chosen &= score >= cut
        chosen &= np.cumsum(chosen) <= limit
    sel = np.flatnonzero(chosen)
    entry_sel = np.repeat(chosen, t_size)
    ctx_ids = (keys[sel] % n_codes).astype(np.int32)
    tables_cat = t_cat[sel].astype(np.int32)
    sc = score[sel].astype(np.float64)
    # Informativeness of each category as context: sum of the scores its codes give others.
    informative = np.bincount(code_cat[ctx_ids], weights=sc, minlength=n_cat).astype(np.float64)
    pair_edges = (code_cat[ctx_ids], tables_cat.astype(np.int64), sc)
    rank = category_rank(hierarchy, cohort, order, informative, pair_edges)
    params = {
        "min_support": support_min,
        "shrinkage": alpha,
        "min_score": score_min,
        "max_tables": limit,
        "order": order,
    }
    return ContextTables(
        offsets=np.asarray(hierarchy.offsets, dtype=np.int64),
        category=tables_cat,
        context=ctx_ids,
        support=support[sel].astype(np.int64),
        score=sc,
        weights=np.ascontiguousarray(weights[entry_sel]),
        rank=rank,
        params=params,
    )
