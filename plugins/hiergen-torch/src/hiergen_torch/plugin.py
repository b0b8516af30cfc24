"""Registers the ``lstm`` and ``transformer`` generators (``hiergen_generators``) and the
``code_head`` Stage 2 (``hiergen_weightings``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiergen
from hiergen.plugins import GeneratorSpec, WeightingSpec
from hiergen.plugins.records import CodeWeights

#: Parameters of the ``code_head`` strategy (see :func:`build_code_head`).
CODE_HEAD_DEFAULTS: dict[str, Any] = {
    "dim": 48,
    "hidden": 128,
    "epochs": 5,
    "batch": 256,
    "lr": 3e-3,
    "seed": 0,
    "autoregressive": True,
    "min_visits": 20,
}


@dataclass(frozen=True, eq=False)
class SamplerWeights(CodeWeights):
    """Stratified fallback weights plus the Stage-2 sampler that draws the codes."""

    sampler: Any = None


def build_code_head(hierarchy: Any, cohort: Any, **params: Any) -> SamplerWeights:
    """Train the neural code head (:mod:`hiergen_torch.code_head`) on ``cohort``: each code
    given its category, the visit's other categories, the stratum and (``autoregressive``)
    the codes drawn before it, categories drawn most frequent first."""
    from hiergen.context.tables import category_rank
    from hiergen.weighting.stratified import build_stratified
    from hiergen_torch.code_head import fit_code_head

    if cohort is None:
        raise ValueError("weighting 'code_head': needs a training cohort, got cohort=None")
    p = {**CODE_HEAD_DEFAULTS, **params}
    unknown = sorted(set(p) - set(CODE_HEAD_DEFAULTS))
    if unknown:
        raise ValueError(f"weighting 'code_head': unknown parameter {unknown[0]!r}; known: "
                         f"{', '.join(CODE_HEAD_DEFAULTS)}")
    base = build_stratified(hierarchy, cohort, min_visits=p["min_visits"])
    rank = category_rank(hierarchy, cohort, "frequency")
    sampler = fit_code_head(
        hierarchy, cohort, rank, autoregressive=bool(p["autoregressive"]), dim=p["dim"],
        hidden=p["hidden"], epochs=p["epochs"], batch=p["batch"], lr=p["lr"], seed=p["seed"],
    )
    return SamplerWeights(base.weights, p, sampler)


def load_code_head(directory: Path) -> Any:
    from hiergen_torch.code_head import CodeHeadSampler

    return CodeHeadSampler.load(directory)


@hiergen.hookimpl
def hiergen_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            "code_head",
            build_code_head,
            "a small neural network draws each code given the visit's categories and the "
            "codes drawn before (torch; microseconds a code)",
            dict(CODE_HEAD_DEFAULTS),
            load_sampler=load_code_head,
        )
    ]


@hiergen.hookimpl
def hiergen_generators() -> list[GeneratorSpec]:
    # Import paths, not classes: listing plugins must not import torch (seconds per process).
    return [
        GeneratorSpec("lstm", "hiergen_torch.generator:LSTMGenerator",
                      "LSTM over category tokens (torch)"),
        GeneratorSpec("transformer", "hiergen_torch.generator:TransformerGenerator",
                      "causal transformer with a KV cache over category tokens (torch)"),
    ]
