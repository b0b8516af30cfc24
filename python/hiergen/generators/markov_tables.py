"""Sparse count tables with Witten-Bell back-off, sampled in vectorised batches.

A :class:`BackoffTable` models ``P(token | context)`` through a chain of *levels*, from the
most specific context (e.g. stratum and previous category) to the least specific one (e.g.
sex). Level ``l`` holds the observed counts ``c_l(ctx, token)`` as a sparse CSR keyed by the
observed context keys. The interpolated estimate is

    P_l(t | ctx) = lam_l(ctx) * c_l(ctx, t) / N_l(ctx) + (1 - lam_l(ctx)) * P_{l+1}(t | ctx'),
    lam_l(ctx) = N_l(ctx) / (N_l(ctx) + smoothing * T_l(ctx)),

with ``N`` the total count and ``T`` the number of distinct tokens seen after the context
(Witten-Bell). A *terminal* level has ``lam = 1`` wherever its context was observed, so the
chain stops there: back-off never reaches a less specific level whose support could hold
tokens impossible for the context (the sex level is terminal so that a category seen only
for women is never drawn for a man). A context never observed at a level has ``lam = 0``.

Sampling draws the level first (a mixture component) and then one observed occurrence of
that level's context uniformly, which is exact for the empirical counts and needs only
gathers: the occurrences of every context are stored contiguously (``np.repeat`` of the
counts), so no search and no per-row alias table is needed.

Checkpoints store only what cannot be recomputed, in the narrowest integer types
(:func:`pack_uint`): per level the context keys as gaps between consecutive sorted keys, the
number of tokens of each context, the tokens and their counts; totals, row starts, look-up
maps and sampling arrays are rebuilt at load. A level whose context is a projection of
another level's (fewer features) need not be stored at all: its counts are the other level's
summed over the dropped features (:func:`marginalise`), because every observation is counted
at every level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

#: Context spaces up to this size get a dense key -> row map (int32, 4 bytes per key: 32 MB).
DENSE_MAP_LIMIT = 1 << 23

_UINTS = (np.uint8, np.uint16, np.uint32, np.uint64)
#: Suffixes of the escape arrays written by :func:`pack_uint`.
_BIG_AT, _BIG = ".big_at", ".big"


def _narrowest(max_value: int) -> type[np.unsignedinteger[Any]]:
    for dtype in _UINTS:
        if max_value <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"value {max_value} does not fit in 64 bits")


def pack_uint(name: str, values: npt.ArrayLike) -> dict[str, npt.NDArray[Any]]:
    """Smallest lossless storage of non-negative integers under ``name``.

    Either the narrowest unsigned type that holds every value, or a narrower base array with
    escapes: values at or above the base type's maximum are stored clipped, and exactly in
    ``name + ".big"`` at the positions ``name + ".big_at"``, when that takes fewer bytes (most
    counts are small, a few are large). :func:`unpack_uint` reverses it.
    """
    arr = np.asarray(values, dtype=np.int64).ravel()
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name}: negative value {int(arr.min())} cannot be packed")
    top = int(arr.max()) if arr.size else 0
    plain = _narrowest(top)
    best: dict[str, npt.NDArray[Any]] = {name: arr.astype(plain)}
    best_bytes = arr.size * np.dtype(plain).itemsize
    at_dtype = _narrowest(max(arr.size - 1, 0))
    for base in _UINTS[: _UINTS.index(plain)]:
        cap = int(np.iinfo(base).max)
        at = np.flatnonzero(arr >= cap)
        big = arr[at]
        size = (
            arr.size * np.dtype(base).itemsize
            + at.size * (np.dtype(at_dtype).itemsize + np.dtype(plain).itemsize)
        )
        if size < best_bytes:
            best_bytes = size
            best = {
                name: np.minimum(arr, cap).astype(base),
                name + _BIG_AT: at.astype(at_dtype),
                name + _BIG: big.astype(plain),
            }
    return best


def unpack_uint(name: str, arrays: Mapping[str, npt.NDArray[Any]]) -> I64:
    """The int64 values stored by :func:`pack_uint` (``KeyError`` when missing,
    ``ValueError`` when the escapes do not match the base array)."""
    base = np.asarray(arrays[name])
    if base.dtype.kind != "u":
        raise ValueError(f"{name}: unsigned integers expected, got {base.dtype}")
    out = base.astype(np.int64)
    if name + _BIG_AT not in arrays:
        return out
    at = np.asarray(arrays[name + _BIG_AT]).astype(np.int64)
    big = np.asarray(arrays[name + _BIG]).astype(np.int64)
    cap = int(np.iinfo(base.dtype).max)
    escaped = np.flatnonzero(out == cap)
    if at.shape != big.shape or not np.array_equal(at, escaped) or (big < cap).any():
        raise ValueError(f"{name}: escape arrays do not match the stored values")
    out[at] = big
    return out


class HashIndex:
    """Open-addressing hash map from non-negative int64 keys to their position, built and
    queried with vectorised numpy (linear probing, load factor at most 1/3)."""

    _MULT = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: I64) -> None:
        self.bits = max(4, int(np.ceil(np.log2(max(1, keys.size) * 3))))
        self.mask = np.int64((1 << self.bits) - 1)
        self.slot_key = np.full(1 << self.bits, -1, dtype=np.int64)
        self.slot_row = np.full(1 << self.bits, -1, dtype=np.int64)
        slot = self._hash(keys)
        pending = np.arange(keys.size)
        while pending.size:
            s = slot[pending]
            free = self.slot_key[s] == -1
            cand, cs = pending[free], s[free]
            taken, first = np.unique(cs, return_index=True)
            winners = cand[first]
            self.slot_key[taken] = keys[winners]
            self.slot_row[taken] = winners
            placed = np.zeros(keys.size, dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            slot[pending] = (slot[pending] + 1) & self.mask

    def _hash(self, keys: npt.NDArray[np.integer[Any]]) -> I64:
        h = keys.astype(np.uint64) * self._MULT
        return (h >> np.uint64(64 - self.bits)).astype(np.int64)

    def lookup(self, keys: npt.NDArray[np.integer[Any]]) -> I64:
        """Position of every key, ``-1`` where absent."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.full(keys.shape, -1, dtype=np.int64)
        slot = self._hash(keys)
        active = np.arange(keys.size)
        while active.size:
            s = slot[active]
            found = self.slot_key[s]
            hit = found == keys[active]
            out[active[hit]] = self.slot_row[s[hit]]
            active = active[~hit & (found != -1)]
            slot[active] = (slot[active] + 1) & self.mask
        return out


@dataclass(eq=False)
class CountLevel:
    """Observed counts of one back-off level (sparse CSR over observed context keys)."""

    n_contexts: int
    ctx_keys: I64  # sorted, unique observed context keys
    row_start: I64  # n_rows + 1, into tokens / counts
    tokens: I32  # sorted within each row
    counts: I64
    terminal: bool = False
    totals: I64 = field(init=False)
    types: I64 = field(init=False)
    _dense: I32 | None = field(init=False, default=None)
    _hash: HashIndex | None = field(init=False, default=None)
    _pair_keys: I64 = field(init=False)

    def __post_init__(self) -> None:
        self.totals = np.add.reduceat(self.counts, self.row_start[:-1]) if self.counts.size else (
            np.zeros(0, dtype=np.int64)
        )
        self.types = np.diff(self.row_start)
        if 0 < self.n_contexts <= DENSE_MAP_LIMIT:
            dense = np.full(self.n_contexts, -1, dtype=np.int32)
            dense[self.ctx_keys] = np.arange(self.ctx_keys.size, dtype=np.int32)
            self._dense = dense
        else:
            self._hash = HashIndex(self.ctx_keys)
        rows = np.repeat(np.arange(self.ctx_keys.size, dtype=np.int64), self.types)
        # Sorted (row, token) keys for count look-ups; row-major and tokens sorted per row.
        self._pair_keys = rows * np.int64(2**31) + self.tokens.astype(np.int64)

    @property
    def n_rows(self) -> int:
        return int(self.ctx_keys.size)

    @classmethod
    def from_observations(
        cls, ctx: I64, tokens: npt.NDArray[np.integer[Any]], n_contexts: int, n_tokens: int, *,
        terminal: bool = False,
    ) -> CountLevel:
        """Count ``(context, token)`` observations (``ctx`` in ``[0, n_contexts)``)."""
        key = ctx.astype(np.int64) * np.int64(n_tokens) + tokens.astype(np.int64)
        uniq, counts = np.unique(key, return_counts=True)
        return cls.from_pair_counts(uniq, counts, n_contexts, n_tokens, terminal=terminal)

    @classmethod
    def from_pair_counts(
        cls, uniq: I64, counts: npt.NDArray[np.integer[Any]], n_contexts: int, n_tokens: int, *,
        terminal: bool = False,
    ) -> CountLevel:
        """A level from sorted unique ``context * n_tokens + token`` keys and their counts."""
        uctx = uniq // n_tokens
        utok = (uniq % n_tokens).astype(np.int32)
        new_row = np.ones(uctx.size, dtype=bool)
        new_row[1:] = uctx[1:] != uctx[:-1]
        starts = np.flatnonzero(new_row)
        row_start = np.append(starts, uctx.size).astype(np.int64)
        return cls(
            n_contexts=int(n_contexts),
            ctx_keys=uctx[starts].astype(np.int64),
            row_start=row_start,
            tokens=utok,
            counts=counts.astype(np.int64),
            terminal=terminal,
        )

    def rows_of(self, keys: npt.NDArray[np.integer[Any]]) -> I64:
        """Row of every context key, ``-1`` where the context was never observed."""
        if self._dense is not None:
            return self._dense[keys].astype(np.int64)
        assert self._hash is not None
        return self._hash.lookup(keys)

    def counts_of(self, rows: I64, tokens: npt.NDArray[np.integer[Any]]) -> I64:
        """``c(row, token)`` (0 where unseen or ``row == -1``)."""
        out = np.zeros(rows.shape, dtype=np.int64)
        if self._pair_keys.size == 0:
            return out
        key = rows * np.int64(2**31) + tokens.astype(np.int64)
        pos = np.minimum(np.searchsorted(self._pair_keys, key), self._pair_keys.size - 1)
        hit = (self._pair_keys[pos] == key) & (rows >= 0)
        out[hit] = self.counts[pos[hit]]
        return out


class LazyKeys:
    """Context keys computed on demand: ``fn(level, idx)`` gives the keys of elements ``idx``
    at back-off level ``level`` (most elements stop at the first levels)."""

    def __init__(
        self, n: int, n_levels: int, fn: Callable[[int, I64], npt.NDArray[np.integer[Any]]]
    ) -> None:
        self.n = int(n)
        self.n_levels = int(n_levels)
        self.fn = fn

    @classmethod
    def of(cls, keys: Sequence[npt.NDArray[np.integer[Any]]]) -> LazyKeys:
        arrays = [np.asarray(k) for k in keys]
        n = int(arrays[0].shape[0]) if arrays else 0
        return cls(n, len(arrays), lambda level, idx: arrays[level][idx])

    def at(self, level: int, idx: I64) -> npt.NDArray[np.integer[Any]]:
        return self.fn(level, idx)

    def materialise(self) -> list[I64]:
        every = np.arange(self.n)
        return [np.asarray(self.at(lv, every), dtype=np.int64) for lv in range(self.n_levels)]

    def subset(self, idx: I64) -> LazyKeys:
        return LazyKeys(idx.size, self.n_levels, lambda level, sub: self.fn(level, idx[sub]))


class BackoffTable:
    """``P(token | context)`` over tokens ``0..n_tokens-1`` with a back-off chain of levels."""

    def __init__(self, levels: Sequence[CountLevel], n_tokens: int, smoothing: float = 1.0):
        if not levels:
            raise ValueError("levels: at least one level is required")
        if smoothing <= 0 or not np.isfinite(smoothing):
            raise ValueError(f"smoothing: must be a positive number, got {smoothing!r}")
        self.levels = list(levels)
        self.n_tokens = int(n_tokens)
        self.smoothing = float(smoothing)
        self._build_sampler()

    # --- derived sampling arrays --------------------------------------------------------
    def _lam(self, level: CountLevel) -> F64:
        n = level.totals.astype(np.float64)
        if level.terminal:
            return (n > 0).astype(np.float64)
        t = level.types.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            lam = np.where(n > 0, n / (n + self.smoothing * t), 0.0)
        return lam

    def _build_sampler(self) -> None:
        occ_parts: list[I32] = []
        base = 0
        self._row_lam: list[F64] = []
        self._row_start: list[I64] = []
        self._row_total: list[I64] = []
        for level in self.levels:
            occ = np.repeat(level.tokens, level.counts)
            occ_parts.append(occ.astype(np.int32))
            starts = np.zeros(level.n_rows + 1, dtype=np.int64)
            np.cumsum(level.totals, out=starts[1:])
            # A trailing sentinel row (index -1) stands for an unobserved context.
            self._row_lam.append(np.append(self._lam(level), 0.0))
            self._row_start.append(np.append(starts[:-1] + base, base))
            self._row_total.append(np.append(level.totals, 0).astype(np.int64))
            base += int(occ.size)
        self._occ = np.concatenate(occ_parts) if occ_parts else np.zeros(0, np.int32)

    # --- queries ------------------------------------------------------------------------
    def rows(self, keys: Sequence[npt.NDArray[np.integer[Any]]]) -> list[I64]:
        if len(keys) != len(self.levels):
            raise ValueError(f"keys: {len(self.levels)} arrays expected, got {len(keys)}")
        return [level.rows_of(k) for level, k in zip(self.levels, keys, strict=True)]

    def sample(
        self,
        keys: Sequence[npt.NDArray[np.integer[Any]]] | LazyKeys,
        rng: np.random.Generator,
    ) -> I32:
        """One token per element, given its context key at every level (or a
        :class:`LazyKeys` that computes a level's keys only for the elements that reach it)."""
        lazy = keys if isinstance(keys, LazyKeys) else LazyKeys.of(keys)
        if lazy.n_levels != len(self.levels):
            raise ValueError(f"keys: {len(self.levels)} arrays expected, got {lazy.n_levels}")
        n = lazy.n
        if n == 0:
            return np.zeros(0, dtype=np.int32)
        u = rng.random(n)
        v = rng.random(n)
        start = np.zeros(n, dtype=np.int64)
        total = np.zeros(n, dtype=np.int64)
        # Walk the chain: level l is taken with probability lam_l given the earlier levels
        # were not. u stays uniform on [0, 1) conditionally on "not taken" after rescaling,
        # and only the elements still undecided are looked up at the next level.
        idx = np.arange(n)
        last_rows: list[tuple[int, I64, I64]] = []
        for level_no, (level, lam_arr, st_arr, tot_arr) in enumerate(
            zip(self.levels, self._row_lam, self._row_start, self._row_total, strict=True)
        ):
            r = level.rows_of(lazy.at(level_no, idx))
            lam = lam_arr[r]
            take = u < lam
            hit = idx[take]
            start[hit] = st_arr[r[take]]
            total[hit] = tot_arr[r[take]]
            keep = ~take
            idx, lam, r = idx[keep], lam[keep], r[keep]
            if idx.size == 0:
                break
            last_rows.append((level_no, idx, r))
            u = (u[keep] - lam) / (1.0 - lam)
        if idx.size:  # rounding at the end of the chain: take the last level with data
            for level_no, at, r in reversed(last_rows):
                pick = np.isin(idx, at[self._row_total[level_no][r] > 0])
                chosen = idx[pick]
                rr = self.levels[level_no].rows_of(lazy.at(level_no, chosen))
                start[chosen] = self._row_start[level_no][rr]
                total[chosen] = self._row_total[level_no][rr]
                idx = idx[~pick]
        if idx.size:
            raise ValueError("no level of the back-off chain has data for some contexts")
        offset = np.minimum((v * total).astype(np.int64), total - 1)
        return self._occ[start + offset]

    def prob(
        self, keys: Sequence[npt.NDArray[np.integer[Any]]], tokens: npt.NDArray[np.integer[Any]]
    ) -> F64:
        """``P(token | context)`` of each element (0 where no level gives it mass)."""
        rows = self.rows(keys)
        p = np.zeros(np.shape(tokens), dtype=np.float64)
        tok = np.asarray(tokens)
        for level, lam_arr, tot_arr, r in reversed(
            list(zip(self.levels, self._row_lam, self._row_total, rows, strict=True))
        ):
            lam = lam_arr[r]
            tot = np.maximum(tot_arr[r], 1).astype(np.float64)
            emp = level.counts_of(r, tok) / tot
            p = lam * emp + (1.0 - lam) * p
        return p

    def distribution(self, keys: Sequence[int]) -> F64:
        """The full distribution over tokens for one context (used for rare fallbacks)."""
        ks = [np.full(self.n_tokens, k, dtype=np.int64) for k in keys]
        return self.prob(ks, np.arange(self.n_tokens, dtype=np.int64))

    # --- persistence --------------------------------------------------------------------
    def to_arrays(
        self, prefix: str, derived: Mapping[int, int] | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """The arrays of every level not in ``derived`` (level -> the level it is recomputed
        from), packed with :func:`pack_uint`: context-key gaps, tokens per context, tokens,
        counts."""
        out: dict[str, npt.NDArray[Any]] = {}
        for i, level in enumerate(self.levels):
            if derived and i in derived:
                continue
            gaps = np.diff(level.ctx_keys, prepend=np.int64(0))
            out.update(pack_uint(f"{prefix}.{i}.ctx_gaps", gaps))
            out.update(pack_uint(f"{prefix}.{i}.row_tokens", level.types))
            out.update(pack_uint(f"{prefix}.{i}.tokens", level.tokens))
            out.update(pack_uint(f"{prefix}.{i}.counts", level.counts))
        return out

    def to_config(self, derived: Mapping[int, int] | None = None) -> dict[str, Any]:
        levels: list[dict[str, Any]] = []
        for i, lv in enumerate(self.levels):
            meta: dict[str, Any] = {"n_contexts": lv.n_contexts, "terminal": lv.terminal}
            if derived and i in derived:
                meta["derived_from"] = int(derived[i])
            levels.append(meta)
        return {"n_tokens": self.n_tokens, "smoothing": self.smoothing, "levels": levels}

    @classmethod
    def from_saved(
        cls,
        prefix: str,
        config: Mapping[str, Any],
        arrays: Mapping[str, npt.NDArray[Any]],
        key_maps: Mapping[int, Callable[[I64], I64]] | None = None,
    ) -> BackoffTable:
        """Rebuild from :meth:`to_config` and :meth:`to_arrays`. A level saved as derived
        from level ``j`` is recomputed with :func:`marginalise` and ``key_maps[level]`` (the
        projection of ``j``'s context keys onto its own). ``KeyError``/``ValueError`` on
        inconsistent input; callers turn them into ``ModelError``."""
        n_tokens = int(config["n_tokens"])
        metas = list(config["levels"])
        levels: dict[int, CountLevel] = {}
        for i, meta in enumerate(metas):
            if "derived_from" in meta:
                continue
            gaps = unpack_uint(f"{prefix}.{i}.ctx_gaps", arrays)
            types = unpack_uint(f"{prefix}.{i}.row_tokens", arrays)
            tokens = unpack_uint(f"{prefix}.{i}.tokens", arrays)
            counts = unpack_uint(f"{prefix}.{i}.counts", arrays)
            ctx_keys = np.cumsum(gaps)
            n_ctx = int(meta["n_contexts"])
            ok = bool(
                types.size == gaps.size
                and (gaps[1:] > 0).all()
                and (types > 0).all()
                and int(types.sum()) == tokens.size == counts.size
                and (ctx_keys.size == 0 or int(ctx_keys[-1]) < n_ctx)
                and (tokens.size == 0 or int(tokens.max()) < n_tokens)
                and (counts > 0).all()
            )
            if ok and tokens.size:  # tokens strictly increasing within each context
                starts = np.zeros(types.size, dtype=np.int64)
                np.cumsum(types[:-1], out=starts[1:])
                step = np.diff(tokens)
                new_row = np.zeros(tokens.size, dtype=bool)
                new_row[starts] = True
                ok = bool((step[~new_row[1:]] > 0).all())
            if not ok:
                raise ValueError(f"table {prefix!r}, level {i}: inconsistent arrays")
            row_start = np.zeros(types.size + 1, dtype=np.int64)
            np.cumsum(types, out=row_start[1:])
            levels[i] = CountLevel(
                n_ctx, ctx_keys, row_start, tokens.astype(np.int32), counts,
                bool(meta["terminal"]),
            )
        for i, meta in enumerate(metas):
            if "derived_from" not in meta:
                continue
            src = int(meta["derived_from"])
            if src not in levels or key_maps is None or i not in key_maps:
                raise ValueError(
                    f"table {prefix!r}, level {i}: derived from level {src}, which is not stored"
                )
            levels[i] = marginalise(
                levels[src], key_maps[i], int(meta["n_contexts"]), n_tokens,
                terminal=bool(meta["terminal"]),
            )
        return cls([levels[i] for i in range(len(metas))], n_tokens, float(config["smoothing"]))


def marginalise(
    level: CountLevel,
    key_map: Callable[[I64], I64],
    n_contexts: int,
    n_tokens: int,
    *,
    terminal: bool = False,
) -> CountLevel:
    """The level whose context keys are ``key_map`` of ``level``'s, with the counts of the
    contexts that map to the same key summed: exactly the level :meth:`CountLevel.
    from_observations` counts from the same observations with the coarser keys."""
    ctx = key_map(np.repeat(level.ctx_keys, level.types))
    if ctx.size and (ctx.min() < 0 or ctx.max() >= n_contexts):
        raise ValueError("marginalise: projected context keys out of range")
    key = ctx * np.int64(n_tokens) + level.tokens.astype(np.int64)
    order = np.argsort(key, kind="stable")
    key = key[order]
    new = np.ones(key.size, dtype=bool)
    new[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(new)
    counts = (
        np.add.reduceat(level.counts[order], starts) if key.size else np.zeros(0, np.int64)
    )
    return CountLevel.from_pair_counts(
        key[starts], counts, n_contexts, n_tokens, terminal=terminal
    )
