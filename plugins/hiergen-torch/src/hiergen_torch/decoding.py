"""Batched constrained generation of token sequences.

Constraints keep every generated visit a valid multiset in canonical order: a visit never starts
with a marker (no empty visit, no patient without a visit), tokens inside a visit never decrease,
a category repeats at most as often as it has codes, a visit holds at most ``max_codes``
categories, a patient at most ``max_visits`` visits and ``max_len`` tokens (the last one forced
to ``END``). Finished rows leave the batch, so late steps only compute the rows still running.
"""

from __future__ import annotations

import torch
from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from torch import Tensor

from hiergen_torch.models import IncrementalDecoder
from hiergen_torch.sampling import sample_logits


@torch.inference_mode()
def generate(
    decoder: IncrementalDecoder,
    sex: Tensor,
    age: Tensor,
    *,
    max_repeats: Tensor,
    max_len: int,
    max_codes: int,
    max_visits: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> Tensor:
    """Token ids ``(B, max_len)`` (int32, PAD after END) for the patients ``sex``, ``age``."""
    device = sex.device
    n = sex.shape[0]
    out = torch.full((n, max_len), PAD, dtype=torch.int32, device=device)
    rows = torch.arange(n, device=device)
    last = torch.full((n,), VISIT_END, dtype=torch.int64, device=device)
    rep = torch.zeros(n, dtype=torch.int64, device=device)
    vlen = torch.zeros_like(rep)
    nvis = torch.zeros_like(rep)
    logits = decoder.start(sex, age, max_len).float()
    n_tokens = logits.shape[-1]
    cat_cols = torch.arange(N_SPECIAL, n_tokens, device=device)
    caps = max_repeats.to(device=device, dtype=torch.int64)
    plain = temperature > 0.0 and top_k == 0 and top_p >= 1.0
    for t in range(max_len):
        if t == max_len - 1:
            tok = torch.full_like(last, END)
        else:
            at_start = last < N_SPECIAL
            lower = torch.where(at_start, N_SPECIAL, last + (rep >= caps[last]).long())
            lower = lower.masked_fill(vlen >= max_codes, n_tokens)
            allow_visit_end = ~(at_start | (nvis + 1 >= max_visits))
            allow_end = ~at_start
            u = torch.rand(last.shape[0], generator=generator, device=device)
            if plain:
                tok = _sample_plain(logits, u, lower, allow_visit_end, allow_end, temperature)
            else:
                tok = _sample_masked(logits, u, lower, allow_visit_end, allow_end,
                                     cat_cols, temperature, top_k, top_p)
        out[rows, t] = tok.to(torch.int32)
        rep = torch.where(tok == last, rep + 1, 1)
        vlen = torch.where(tok < N_SPECIAL, 0, vlen + 1)
        nvis = nvis + (tok == VISIT_END).long()
        last = tok
        running = tok != END
        n_running = int(running.sum())
        if n_running == 0:
            break
        if n_running < running.shape[0]:
            keep = running.nonzero().squeeze(1)
            rows, last, rep, vlen, nvis, tok = (
                x.index_select(0, keep) for x in (rows, last, rep, vlen, nvis, tok)
            )
            decoder.keep(keep)
        logits = decoder.step(tok).float()
    return out


def _sample_masked(
    logits: Tensor, u: Tensor, lower: Tensor, allow_visit_end: Tensor, allow_end: Tensor,
    cat_cols: Tensor, temperature: float, top_k: int, top_p: float,
) -> Tensor:
    """Mask forbidden tokens with ``-inf``, then temperature / top-k / top-p sampling."""
    neg_inf = float("-inf")
    logits[:, N_SPECIAL:].masked_fill_(cat_cols < lower.unsqueeze(1), neg_inf)
    logits[:, PAD] = neg_inf
    logits[:, VISIT_END].masked_fill_(~allow_visit_end, neg_inf)
    logits[:, END].masked_fill_(~allow_end, neg_inf)
    return sample_logits(logits, u, temperature=temperature, top_k=top_k, top_p=top_p)


def _sample_plain(
    logits: Tensor, u: Tensor, lower: Tensor, allow_visit_end: Tensor, allow_end: Tensor,
    temperature: float,
) -> Tensor:
    """Exact constrained sampling without masking passes (no top-k / top-p).

    The allowed set is the allowed markers plus the category tokens ``>= lower``: its mass is
    read off one cumulative sum, and one uniform per row picks a marker or searches the
    category part of the cumulative sum.
    """
    if temperature != 1.0:
        logits = logits.div_(temperature)
    probs = torch.softmax(logits, dim=-1)
    cdf = probs.cumsum(dim=-1)
    n_tokens = probs.shape[-1]
    zero = probs.new_zeros(())
    m_visit = torch.where(allow_visit_end, probs[:, VISIT_END], zero)
    m_end = torch.where(allow_end, probs[:, END], zero)
    base = cdf.gather(1, (lower - 1).clamp(max=n_tokens - 1).unsqueeze(1)).squeeze(1)
    cat_mass = (cdf[:, -1] - base).clamp_(min=0.0)
    total = m_visit + m_end + cat_mass
    x = u * total
    target = base + (x - m_visit - m_end)
    idx = torch.searchsorted(cdf, target.unsqueeze(1), right=True).squeeze(1)
    idx = torch.maximum(idx.clamp_(max=n_tokens - 1), lower.clamp(max=n_tokens - 1))
    tok = torch.where(x < m_visit, VISIT_END, torch.where(x < m_visit + m_end, END, idx))
    # A visit that cannot take another category (or an all-zero mass after rounding) ends.
    stuck = (total <= 0) | ((tok >= N_SPECIAL) & (lower >= n_tokens))
    if bool(stuck.any()):
        tok = torch.where(stuck & allow_end, END, tok)
    return tok
