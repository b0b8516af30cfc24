"""Context tables on disk: ``<stem>.safetensors`` (arrays) + ``<stem>.json`` (parameters).

``compact=True`` (what model bundles use) stores ids in the narrowest integer type that holds
them, scores as float32 and weights as float16 scaled so that each table's largest weight is
1; :func:`load_context_tables` reads either layout back into the canonical dtypes, with each
table's weights renormalised to sum to 1. A table's distribution survives to about 1e-3
relative precision, and a positive weight never rounds to zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.context.tables import ContextTables
from hiergen.errors import ModelError

FORMAT = "hiergen-context-tables"
VERSION = 1
_ARRAYS = ("offsets", "category", "context", "support", "score", "weights", "rank")
_CANONICAL: dict[str, Any] = {
    "offsets": np.int64, "category": np.int32, "context": np.int32, "support": np.int64,
    "score": np.float64, "weights": np.float64, "rank": np.int32,
}
#: Smallest positive float16 (a subnormal): positive weights never round to zero.
_F16_TINY = np.float16(2.0**-24)


def _narrow_int(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``a`` in the smallest of uint8/uint16/int32/int64 that holds its values."""
    if a.size == 0:
        return a.astype(np.uint16)
    lo, hi = int(a.min()), int(a.max())
    for dt in (np.uint8, np.uint16):
        if lo >= 0 and hi <= np.iinfo(dt).max:
            return a.astype(dt)
    if np.iinfo(np.int32).min <= lo and hi <= np.iinfo(np.int32).max:
        return a.astype(np.int32)
    return a.astype(np.int64)


def compact_weights(tables: ContextTables) -> npt.NDArray[np.float16]:
    """The tables' weights as float16, each table scaled to a maximum of 1."""
    w = np.asarray(tables.weights, dtype=np.float64)
    if w.size == 0:
        return w.astype(np.float16)
    starts = tables.table_offsets[:-1]
    peak = np.maximum.reduceat(w, starts)
    sizes = np.diff(tables.table_offsets)
    scale = np.repeat(np.where(peak > 0, peak, 1.0), sizes)
    scaled = w / scale
    out = scaled.astype(np.float16)
    out[(scaled > 0) & (out == 0)] = _F16_TINY
    return out


def as_stored(tables: ContextTables) -> ContextTables:
    """``tables`` exactly as :func:`load_context_tables` returns them after a compact save
    (weights through float16, scores through float32), so that a model generates the same
    codes before and after it is saved."""
    from dataclasses import replace

    weights = _normalised(compact_weights(tables), tables.table_offsets)
    score = np.asarray(tables.score, dtype=np.float32).astype(np.float64)
    return replace(tables, weights=weights, score=score)


def _normalised(weights: npt.NDArray[Any], table_offsets: npt.NDArray[np.int64]) -> Any:
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return w
    sums = np.add.reduceat(w, table_offsets[:-1])
    sizes = np.diff(table_offsets)
    return w / np.repeat(np.where(sums > 0, sums, 1.0), sizes)


def save_context_tables(
    tables: ContextTables, directory: str | Path, stem: str = "context", *, compact: bool = False
) -> Path:
    """Write ``tables`` into ``directory``; returns the safetensors path.

    ``compact`` stores narrow ids, float32 scores and float16 weights (about a quarter of the
    bytes); loading renormalises the weights.
    """
    from safetensors.numpy import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(getattr(tables, name)) for name in _ARRAYS}
    if compact:
        for name in ("category", "context", "support", "rank"):
            arrays[name] = _narrow_int(arrays[name])
        arrays["score"] = arrays["score"].astype(np.float32)
        arrays["weights"] = compact_weights(tables)
    path = out / f"{stem}.safetensors"
    save_file(arrays, str(path))
    meta = {"format": FORMAT, "version": VERSION, "params": dict(tables.params),
            "n_tables": tables.n_tables, "nbytes": tables.nbytes, "compact": bool(compact)}
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_context_tables(directory: str | Path, stem: str = "context") -> ContextTables:
    """Read tables written by :func:`save_context_tables` (``ModelError`` when invalid)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    root = Path(directory)
    path, meta_path = root / f"{stem}.safetensors", root / f"{stem}.json"
    try:
        meta = json.loads(meta_path.read_text())
        arrays = load_file(str(path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ModelError(f"{path}: cannot read context tables ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ModelError(f"{meta_path}: not {FORMAT} version {VERSION}")
    missing = [name for name in _ARRAYS if name not in arrays]
    if missing:
        raise ModelError(f"{path}: missing array {missing[0]!r}")
    kinds = {name: arrays[name].dtype.kind for name in _ARRAYS}
    bad = [n for n, k in kinds.items() if k not in ("f" if n in ("score", "weights") else "iu")]
    if bad:
        raise ModelError(f"{path}: array {bad[0]!r} has dtype {arrays[bad[0]].dtype}")
    canon = {name: np.ascontiguousarray(arrays[name], dtype=_CANONICAL[name]) for name in _ARRAYS}
    if meta.get("compact"):
        sizes = np.diff(canon["offsets"])
        if canon["category"].size and (
            canon["category"].max() >= sizes.size or canon["category"].min() < 0
        ):
            raise ModelError(f"{path}: context tables: category ids out of range")
        table_offsets = np.zeros(canon["category"].size + 1, dtype=np.int64)
        np.cumsum(sizes[canon["category"]], out=table_offsets[1:])
        if table_offsets[-1] != canon["weights"].size:
            raise ModelError(f"{path}: context tables: weights do not match the tables")
        canon["weights"] = _normalised(canon["weights"], table_offsets)
    return ContextTables(**canon, params=meta["params"])
