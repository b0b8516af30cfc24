"""Drawing one token per row from logits with torch operations (the ``"torch"`` sampler, used
on GPU; on CPU the compiled :func:`hiergen.sampling.sample_logits` is faster): temperature,
top-k and exact top-p (nucleus).

Every draw uses one uniform number per row (inverse CDF), so a seeded ``torch.Generator``
makes sampling reproducible, and the common case (``top_p == 1``, no top-k) needs no sort: a
softmax, a cumulative sum and a binary search per row. Top-p looks for each row's nucleus in its
``k`` largest logits first and sorts a full row only when those do not reach ``top_p``.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: How many candidates the top-p search looks at before it falls back to a full sort.
TOP_P_CANDIDATES = 64


def check_sampling_options(temperature: float, top_k: int, top_p: float) -> None:
    if not temperature >= 0.0:
        raise ValueError(f"temperature: must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k: must be >= 0 (0 = off), got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p: must be in (0, 1], got {top_p}")


def inverse_cdf(weights: Tensor, u: Tensor) -> Tensor:
    """Index drawn per row with probability proportional to ``weights`` (>= 0), ``u`` in [0, 1)."""
    cdf = weights.cumsum(dim=-1)
    x = (u * cdf[:, -1]).unsqueeze(1)
    idx = torch.searchsorted(cdf, x, right=True).squeeze(1)
    idx = idx.clamp_(max=weights.shape[-1] - 1)
    # Rounding can land on a zero-weight slot at the very end: take the row's heaviest instead.
    bad = weights.gather(1, idx.unsqueeze(1)).squeeze(1) <= 0
    if bool(bad.any()):
        idx = torch.where(bad, weights.argmax(dim=-1), idx)
    return idx


def _nucleus(sorted_probs: Tensor, top_p: float) -> Tensor:
    """Zero the tail of descending probabilities beyond the smallest prefix reaching ``top_p``."""
    cum = sorted_probs.cumsum(dim=-1)
    return sorted_probs.masked_fill((cum - sorted_probs) >= top_p, 0.0)


def _top_p(logits: Tensor, u: Tensor, top_p: float) -> Tensor:
    k = min(TOP_P_CANDIDATES, logits.shape[-1])
    full = torch.softmax(logits, dim=-1)
    probs, idx = torch.topk(full, k, dim=-1)
    out = idx.gather(1, inverse_cdf(_nucleus(probs, top_p), u).unsqueeze(1)).squeeze(1)
    short = probs.sum(dim=-1) < top_p
    if bool(short.any()):
        rows = short.nonzero().squeeze(1)
        sprobs, sidx = full[rows].sort(dim=-1, descending=True)
        pick = inverse_cdf(_nucleus(sprobs, top_p), u[rows])
        out[rows] = sidx.gather(1, pick.unsqueeze(1)).squeeze(1)
    return out


def sample_logits(
    logits: Tensor,
    u: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> Tensor:
    """One token id per row of ``logits`` (``-inf`` = forbidden); may modify ``logits``.

    ``temperature == 0`` is greedy decoding; ``top_k == 0`` and ``top_p == 1`` switch those off.
    """
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    if temperature != 1.0:
        logits = logits.div_(temperature)
    n_tokens = logits.shape[-1]
    if 0 < top_k < n_tokens:
        vals, idx = torch.topk(logits, top_k, dim=-1)
        probs = torch.softmax(vals, dim=-1)
        if top_p < 1.0:
            probs = _nucleus(probs, top_p)
        return idx.gather(1, inverse_cdf(probs, u).unsqueeze(1)).squeeze(1)
    if top_p < 1.0:
        return _top_p(logits, u, top_p)
    return inverse_cdf(torch.softmax(logits, dim=-1), u)
