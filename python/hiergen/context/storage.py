"""Context tables on disk: ``<stem>.safetensors`` (arrays) + ``<stem>.json`` (parameters)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hiergen.context.tables import ContextTables
from hiergen.errors import ModelError

FORMAT = "hiergen-context-tables"
VERSION = 1
_ARRAYS = ("offsets", "category", "context", "support", "score", "weights", "rank")


def save_context_tables(
    tables: ContextTables, directory: str | Path, stem: str = "context"
) -> Path:
    """Write ``tables`` into ``directory``; returns the safetensors path."""
    from safetensors.numpy import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(getattr(tables, name)) for name in _ARRAYS}
    path = out / f"{stem}.safetensors"
    save_file(arrays, str(path))
    meta = {"format": FORMAT, "version": VERSION, "params": dict(tables.params),
            "n_tables": tables.n_tables, "nbytes": tables.nbytes}
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
    return ContextTables(**{name: arrays[name] for name in _ARRAYS}, params=meta["params"])
