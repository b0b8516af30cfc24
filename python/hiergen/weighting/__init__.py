"""Stage-2 weighting strategies: per-code weight tables aligned with a hierarchy.

A strategy is ``build(hierarchy, cohort, **params) -> CodeWeights``; it returns plain arrays
(each category block normalised to sum to 1) and never imports the compiled module.
Strategies are plugins (``hiergen_weightings`` hook); :func:`build_weights` looks one up by
name, checks its parameters and its output.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.demographics import N_STRATA
from hiergen.errors import PluginError
from hiergen.hierarchy import Hierarchy
from hiergen.plugins.records import CodeWeights, WeightingSpec
from hiergen.weighting._arrays import block_sums, code_counts, normalise_blocks
from hiergen.weighting.frequency import build_frequency, build_tempered
from hiergen.weighting.smoothed import build_smoothed
from hiergen.weighting.stratified import build_stratified
from hiergen.weighting.uniform import build_uniform


def accepted_params(spec: WeightingSpec) -> set[str] | None:
    """Keyword parameters ``spec.build`` accepts beyond (hierarchy, cohort); None if ``**kw``."""
    params = list(inspect.signature(spec.build).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name
        for p in params[2:]
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def _coerce(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if default is None or not isinstance(default, str):
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    return text


def parse_params(spec: WeightingSpec, items: Iterable[str]) -> dict[str, Any]:
    """``["alpha=0.5", ...]`` (command-line form) -> typed params, typed after ``spec.defaults``."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"weighting {spec.name!r}: parameter {item!r} is not NAME=VALUE")
        try:
            out[key] = _coerce(text, spec.defaults.get(key))
        except ValueError as exc:
            raise ValueError(f"weighting {spec.name!r}: parameter {key}: {exc}") from None
    return out


def validate_code_weights(weights: CodeWeights, hierarchy: Hierarchy, name: str) -> CodeWeights:
    """Check a strategy's output: float64 ``(1 or N_STRATA, n_codes)``, finite, >= 0, and no
    category whose weights are all zero."""
    where = f"weighting {name!r} returned"
    if not isinstance(weights, CodeWeights):
        raise PluginError(f"{where} {type(weights).__name__}, not CodeWeights")
    w = np.asarray(weights.weights)
    if w.ndim != 2 or w.shape[0] not in (1, N_STRATA) or w.shape[1] != hierarchy.n_codes:
        raise PluginError(
            f"{where} weights of shape {w.shape}; expected (1, {hierarchy.n_codes}) or "
            f"({N_STRATA}, {hierarchy.n_codes})"
        )
    if w.dtype != np.float64:
        raise PluginError(f"{where} weights of dtype {w.dtype}; expected float64")
    if not np.isfinite(w).all() or (w < 0).any():
        raise PluginError(f"{where} negative or non-finite weights")
    empty = np.argwhere(block_sums(w, hierarchy.offsets) <= 0)
    if empty.size:
        s, c = (int(v) for v in empty[0])
        raise PluginError(
            f"{where} all-zero weights for category {hierarchy.categories[c]!r} (row {s})"
        )
    return weights


def build_weights(
    name: str,
    hierarchy: Hierarchy,
    cohort: Cohort | None,
    params: Mapping[str, Any] | None = None,
) -> CodeWeights:
    """Build the weights of the strategy ``name`` (any installed plugin) and check them.

    Unknown parameters raise ``ValueError`` listing the accepted ones; the returned
    ``CodeWeights.params`` hold the effective parameters (defaults filled in).
    """
    from hiergen.plugins.registry import get_weighting

    spec = get_weighting(name)
    given = dict(params or {})
    accepted = accepted_params(spec)
    if accepted is not None:
        unknown = sorted(set(given) - accepted)
        if unknown:
            listed = ", ".join(sorted(accepted)) or "none"
            raise ValueError(
                f"weighting {name!r}: unknown parameter {unknown[0]!r}; accepted: {listed}"
            )
    effective = {**spec.defaults, **given}
    result = validate_code_weights(spec.build(hierarchy, cohort, **effective), hierarchy, name)
    if not result.params and effective:
        result = dataclasses.replace(result, params=effective)  # keeps tables, sampler
    return result


__all__ = [
    "accepted_params",
    "block_sums",
    "build_frequency",
    "build_smoothed",
    "build_stratified",
    "build_tempered",
    "build_uniform",
    "build_weights",
    "code_counts",
    "normalise_blocks",
    "parse_params",
    "validate_code_weights",
]
