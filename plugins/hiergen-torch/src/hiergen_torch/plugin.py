"""Registers the ``lstm`` and ``transformer`` generators (``hiergen_generators``) and the
``code_head`` Stage 2 (``hiergen_weightings``)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiergen
from hiergen.plugins import GeneratorSpec, WeightingSpec
from hiergen.plugins.records import CodeWeights


@dataclass(frozen=True, eq=False)
class SamplerWeights(CodeWeights):
    """Stratified fallback weights plus the Stage-2 sampler that draws the codes."""

    sampler: Any = None


def build_code_head(hierarchy: Any, cohort: Any, *, dim: int = 48, hidden: int = 128,
                    epochs: int = 5, batch: int = 256, lr: float = 3e-3, seed: int = 0,
                    autoregressive: bool = True, min_visits: int = 20) -> SamplerWeights:
    """Train the neural code head (:mod:`hiergen_torch.code_head`) on ``cohort``: each code
    given its category, the visit's other categories, the stratum and (``autoregressive``)
    the codes drawn before it, categories drawn most frequent first; the stratified weights
    (``min_visits``) are stored beside it."""
    from hiergen.context.tables import category_rank
    from hiergen.weighting.stratified import build_stratified
    from hiergen_torch.code_head import fit_code_head

    if cohort is None:
        raise ValueError("weighting 'code_head': needs a training cohort, got cohort=None")
    head: dict[str, Any] = {"dim": dim, "hidden": hidden, "epochs": epochs, "batch": batch,
                            "lr": lr, "seed": seed}
    base = build_stratified(hierarchy, cohort, min_visits=min_visits)
    rank = category_rank(hierarchy, cohort, "frequency")
    sampler = fit_code_head(hierarchy, cohort, rank, autoregressive=bool(autoregressive),
                            **head)
    params = {**head, "autoregressive": bool(autoregressive), "min_visits": min_visits}
    return SamplerWeights(base.weights, params, sampler)


#: Parameters of the ``code_head`` strategy and their defaults (:func:`build_code_head`'s).
CODE_HEAD_DEFAULTS: dict[str, Any] = {
    name: p.default for name, p in inspect.signature(build_code_head).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


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
