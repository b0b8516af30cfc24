"""What a trained model holds, for ``hiergen info``: its training data in counts, its two
stages, and for a context-aware Stage 2 which (category, context code) tables it keeps.

No patient rows are read: everything comes from the model folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hiergen.model import HiergenModel, default_model_dir


def folder_bytes(directory: Path) -> int:
    """Bytes of all the files under ``directory``."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def describe(model: HiergenModel) -> dict[str, Any]:
    """A JSON-ready summary of ``model``: source, hierarchy, Stage 1, Stage 2."""
    h = model.hierarchy
    out: dict[str, Any] = {}
    if model.directory is not None:
        directory = Path(model.directory)
        out["directory"] = str(directory)
        out["shipped_default"] = directory.resolve() == default_model_dir().resolve()
        out["bytes"] = folder_bytes(directory)
    out["training"] = dict(model.summary)
    out["hierarchy"] = {"codes": h.n_codes, "categories": h.n_categories,
                        "codes_as_own_categories": len(h.split_from)}
    out["stage1"] = {"generator": model.generator_name}
    stage2: dict[str, Any] = {
        "weighting": model.weighting.get("name"),
        "params": dict(model.weighting.get("params", {})),
        "strata": int(model.weights.shape[0]),
    }
    if model.context is not None:
        t = model.context
        support = np.asarray(t.support)
        stage2["context_tables"] = {
            "tables": t.n_tables,
            "categories_with_tables": int(np.unique(t.category).size),
            "context_codes": int(np.unique(t.context).size),
            "support_min": int(support.min()) if support.size else None,
            "support_median": float(np.median(support)) if support.size else None,
            "bytes_in_memory": int(t.nbytes),
        }
    if model.sampler is not None:
        stage2["sampler"] = type(model.sampler).__name__
    out["stage2"] = stage2
    return out


def _code_id(model: HiergenModel, code: str) -> int:
    """The id of ``code`` in the model, or a ValueError naming it."""
    try:
        return model.hierarchy.code_id(code)
    except KeyError:
        raise ValueError(f"code {code!r} is not in the model's {model.hierarchy.n_codes:,} "
                         "codes") from None


def _category_ids(model: HiergenModel, category: str) -> list[int]:
    """Ids of the categories shown as ``category``: the category itself and the codes split
    off it as categories of their own; a ValueError naming it when there are none."""
    labels = model.hierarchy.parent_labels
    ids = [i for i, (name, label) in enumerate(zip(model.hierarchy.categories, labels,
                                                   strict=True))
           if category in (name, label)]
    if not ids:
        raise ValueError(f"category {category!r} is not in the model's "
                         f"{model.hierarchy.n_categories:,} categories")
    return ids


def base_shares(model: HiergenModel, category: int) -> np.ndarray:
    """The category's code shares without context: the Stage-2 weights averaged over strata,
    normalised within the category."""
    lo, hi = model.hierarchy.offsets[category], model.hierarchy.offsets[category + 1]
    w = model.weights[:, lo:hi]
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-300)
    return np.asarray(w.mean(0))


def context_rows(model: HiergenModel, *, category: str | None = None,
                 context: str | None = None, top: int = 10,
                 codes_shown: int = 3) -> list[dict[str, Any]]:
    """The context tables of ``category`` (or those whose context is the code ``context``),
    best score first, at most ``top``; each with its support, score and its ``codes_shown``
    most likely codes, their share given the context and without it (``base_shares``)."""
    t = model.context
    if t is None:
        raise ValueError(f"the model's Stage 2 ({model.weighting.get('name')}) has no context "
                         "tables; train with --weighting context")
    if (category is None) == (context is None):
        raise ValueError("pass a category or a context code")
    if top < 1:
        raise ValueError(f"top: expected at least 1, got {top}")
    if category is not None:
        sel = np.flatnonzero(np.isin(t.category, _category_ids(model, category)))
    else:
        sel = np.flatnonzero(t.context == _code_id(model, str(context)))
    sel = sel[np.argsort(-t.score[sel], kind="stable")][:top]
    h = model.hierarchy
    names = h.categories
    offsets, table_offsets = h.offsets, t.table_offsets
    rows = []
    shares: dict[int, np.ndarray] = {}  # per category (a listing by category repeats it)
    for i in sel:
        c = int(t.category[i])
        w = t.weights[table_offsets[i]:table_offsets[i + 1]]
        if c not in shares:
            shares[c] = base_shares(model, c)
        base = shares[c]
        best = np.argsort(-w, kind="stable")[:codes_shown]
        rows.append({
            "category": names[c],
            "context": h.codes[int(t.context[i])],
            "support": int(t.support[i]),
            "score": float(t.score[i]),
            "codes": [{"code": h.codes[int(offsets[c] + j)], "share": float(w[j]),
                       "base_share": float(base[j])} for j in best],
        })
    return rows


def format_summary(info: dict[str, Any]) -> str:
    """``describe`` as text."""
    lines = []
    if "directory" in info:
        where = info["directory"] + (" (the default model shipped with hiergen)"
                                     if info.get("shipped_default") else "")
        lines.append(f"model: {where}, {info['bytes'] / 1e6:.1f} MB")
    tr = info["training"]
    if tr:
        lines.append(
            f"trained on: {tr.get('source', '?')} ({tr.get('format', '?')}), "
            f"{tr.get('patients', 0):,} patients, {tr.get('visits', 0):,} visits, "
            f"{tr.get('codes_per_visit_mean', 0):.2f} codes per visit, seed {tr.get('seed', '?')}")
    hi = info["hierarchy"]
    own = hi["codes_as_own_categories"]
    lines.append(f"hierarchy: {hi['codes']:,} codes in {hi['categories']:,} categories"
                 + (f" ({own:,} codes are categories of their own)" if own else ""))
    lines.append(f"stage 1: {info['stage1']['generator']}")
    s2 = info["stage2"]
    params = ", ".join(f"{k}={v}" for k, v in sorted(s2["params"].items()))
    lines.append(f"stage 2: {s2['weighting']} ({params or 'no parameters'}); "
                 f"{s2['strata']} strat{'um' if s2['strata'] == 1 else 'a'}")
    ct = s2.get("context_tables")
    if ct is not None:
        support = ("" if ct["support_min"] is None else
                   f"; support {ct['support_min']:,} visits or more (median "
                   f"{ct['support_median']:,.0f})")
        lines.append(f"  context tables: {ct['tables']:,} for {ct['categories_with_tables']:,} "
                     f"categories, {ct['context_codes']:,} context codes{support}; "
                     f"{ct['bytes_in_memory'] / 1e6:.2f} MB in memory")
    if "sampler" in s2:
        lines.append(f"  sampler: {s2['sampler']}")
    return "\n".join(lines)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """``context_rows`` as a text table."""
    if not rows:
        return "no context tables"
    out = [f"{'category':>8s} {'context':>8s} {'support':>8s} {'score':>8s}  "
           "most likely codes given the context (share; without context)"]
    for r in rows:
        codes = ", ".join(f"{c['code']} {c['share']:.2f} ({c['base_share']:.2f})"
                          for c in r["codes"])
        out.append(f"{r['category']:>8s} {r['context']:>8s} {r['support']:8,d} "
                   f"{r['score']:8.1f}  {codes}")
    return "\n".join(out)
