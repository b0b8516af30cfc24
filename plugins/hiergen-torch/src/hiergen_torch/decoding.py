"""Batched constrained generation of token sequences.

Constraints keep every generated visit a valid multiset in canonical order: a visit never starts
with a marker (no empty visit, no patient without a visit), tokens inside a visit never decrease,
a category repeats at most as often as it has codes, a visit holds at most ``max_codes``
categories, a patient at most ``max_visits`` visits and ``max_len`` tokens (the last one forced
to ``END``). Finished rows leave the batch, so late steps only compute the rows still running.

Two samplers draw the tokens. ``"compiled"`` (CPU) hands each step's logits to hiergen's
compiled :func:`hiergen.sampling.sample_logits`, which applies the constraints as a per-row
floor without masking passes and draws from a counter-based stream keyed by (seed, patient,
step): a patient's tokens depend only on the seed, its stream id and the model's numbers, not on
which other patients share the batch or how many workers run. ``"torch"`` (any device, used
on GPU) samples with torch operations and a seeded ``torch.Generator``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from hiergen.sampling import sample_logits as compiled_sample_logits
from hiergen_torch.constraints import VisitState
from hiergen_torch.models import IncrementalDecoder, make_decoder
from hiergen_torch.sampling import sample_logits

Sampler = Literal["auto", "compiled", "torch"]

#: Finished rows are dropped once the running rows are at most this share of the batch
#: (dropping means copying every layer's key/value cache, so not on every step).
COMPACT_AT = 0.9


def generate(
    decoder: IncrementalDecoder,
    sex: Tensor,
    age: Tensor,
    *,
    max_repeats: Tensor,
    max_len: int,
    max_codes: int,
    max_visits: int,
    seed: int,
    streams: npt.NDArray[np.int64] | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    sampler: Sampler = "auto",
) -> Tensor:
    """Token ids ``(B, max_len)`` (int32, PAD after END) for the patients ``sex``, ``age``.

    ``seed`` is an integer in [0, 2**64); ``streams`` (default ``0 .. B-1``) gives each
    patient its random stream for the compiled sampler (pass global patient numbers so that
    splitting a request into batches does not change anyone's stream).
    """
    if sampler == "auto":
        sampler = "compiled" if sex.device.type == "cpu" else "torch"
    if sampler == "compiled":
        ids = np.arange(sex.shape[0], dtype=np.int64) if streams is None else np.asarray(
            streams, dtype=np.int64)
        return _generate_compiled(
            decoder, sex, age, caps=max_repeats.cpu().numpy().astype(np.int64),
            max_len=max_len, max_codes=max_codes, max_visits=max_visits, seed=seed,
            streams=ids, temperature=temperature, top_k=top_k, top_p=top_p)
    if sampler != "torch":
        raise ValueError(f"sampler: expected 'auto', 'compiled' or 'torch', got {sampler!r}")
    gen = torch.Generator(device=sex.device).manual_seed(seed & (2**63 - 1))
    return generate_torch(decoder, sex, age, max_repeats=max_repeats, max_len=max_len,
                          max_codes=max_codes, max_visits=max_visits, generator=gen,
                          temperature=temperature, top_k=top_k, top_p=top_p)


def generate_blocks(
    model: torch.nn.Module,
    sex: npt.NDArray[np.int64],
    age: npt.NDArray[np.float32],
    *,
    block_size: int,
    workers: int = 1,
    device: torch.device | str = "cpu",
    seed: int,
    max_repeats: Tensor,
    max_len: int,
    max_codes: int,
    max_visits: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    sampler: Sampler = "auto",
) -> npt.NDArray[np.int32]:
    """Tokens ``(n, max_len)`` for many patients, in fixed blocks of ``block_size``.

    Patient ``i`` draws from stream ``i`` of ``seed`` and every block is decoded as a unit, so
    ``workers`` (threads, each running whole blocks; torch releases the GIL inside its
    operations) changes the speed, not the output. The caller sets torch's intra-op threads
    (one per worker is the fast choice on CPU).
    """
    n = sex.shape[0]
    out = np.full((n, max_len), PAD, dtype=np.int32)
    step = max(1, block_size)
    blocks = [(start, min(start + step, n)) for start in range(0, n, step)]

    def run(block: tuple[int, int]) -> None:
        start, stop = block
        tokens = generate(
            make_decoder(model),
            torch.from_numpy(np.ascontiguousarray(sex[start:stop], dtype=np.int64)).to(device),
            torch.from_numpy(np.ascontiguousarray(age[start:stop], dtype=np.float32)).to(device),
            max_repeats=max_repeats, max_len=max_len, max_codes=max_codes,
            max_visits=max_visits, seed=seed, streams=np.arange(start, stop, dtype=np.int64),
            temperature=temperature, top_k=top_k, top_p=top_p, sampler=sampler,
        )
        out[start:stop] = tokens.cpu().numpy()

    workers = min(max(1, workers), len(blocks))
    if workers == 1:
        for block in blocks:
            run(block)
    else:
        from concurrent.futures import ThreadPoolExecutor

        # OpenMP's thread count is per thread: new threads would start with one per core.
        threads = torch.get_num_threads()

        def init() -> None:
            torch.set_num_threads(threads)

        with ThreadPoolExecutor(workers, initializer=init) as pool:
            list(pool.map(run, blocks))
    return out


@torch.inference_mode()
def _generate_compiled(
    decoder: IncrementalDecoder, sex: Tensor, age: Tensor, *, caps: npt.NDArray[np.int64],
    max_len: int, max_codes: int, max_visits: int, seed: int,
    streams: npt.NDArray[np.int64], temperature: float, top_k: int, top_p: float,
) -> Tensor:
    """The compiled-sampler loop; bookkeeping on small numpy arrays (cheaper than torch ops)."""
    n = sex.shape[0]
    out = np.full((n, max_len), PAD, dtype=np.int32)
    rows = np.arange(n)
    state = VisitState(n)
    alive = np.ones(n, dtype=bool)
    all_alive = True
    neg_inf = np.float32(-np.inf)
    logits = decoder.start(sex, age, max_len).float().contiguous()
    n_tokens = logits.shape[-1]
    for t in range(max_len):
        if t == max_len - 1:
            tok = np.full(rows.shape[0], END, dtype=np.int32)
        else:
            x = logits.cpu().numpy()
            lower, no_visit_end, no_end = state.allowed(
                caps, max_codes=max_codes, max_visits=max_visits, n_tokens=n_tokens)
            x[:, PAD] = neg_inf
            x[no_visit_end, VISIT_END] = neg_inf
            x[no_end, END] = neg_inf
            tok = compiled_sample_logits(
                x, seed=seed, step=t, streams=streams, floors=lower, floor_start=N_SPECIAL,
                temperature=temperature, top_k=top_k, top_p=top_p, threads=1)
            tok[tok < 0] = END  # nothing allowed: the patient ends
        if all_alive:
            out[rows, t] = tok
        else:
            tok[~alive] = END
            out[rows[alive], t] = tok[alive]
        tok64 = tok.astype(np.int64)
        state.advance(tok64)
        alive &= tok64 != END
        n_alive = int(np.count_nonzero(alive))
        if n_alive == 0:
            break
        all_alive = n_alive == alive.shape[0]
        if n_alive <= COMPACT_AT * alive.shape[0]:
            keep = np.flatnonzero(alive)
            rows, streams, tok64 = (a[keep] for a in (rows, streams, tok64))
            state.take(keep)
            alive = np.ones(n_alive, dtype=bool)
            all_alive = True
            decoder.keep(torch.from_numpy(keep).to(logits.device))
        logits = decoder.step(torch.from_numpy(tok64).to(logits.device)).float().contiguous()
    return torch.from_numpy(out)


@torch.inference_mode()
def generate_torch(
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
    """The torch-sampler loop (any device): like :func:`generate` with a ``torch.Generator``.
    The constraints' bookkeeping is a :class:`VisitState` of tensors on the model's device."""
    device = sex.device
    n = sex.shape[0]
    out = torch.full((n, max_len), PAD, dtype=torch.int32, device=device)
    rows = torch.arange(n, device=device)
    state = VisitState(n, device=device)
    logits = decoder.start(sex, age, max_len).float()
    n_tokens = logits.shape[-1]
    cat_cols = torch.arange(N_SPECIAL, n_tokens, device=device)
    caps = max_repeats.to(device=device, dtype=torch.int64)
    plain = temperature > 0.0 and top_k == 0 and top_p >= 1.0
    for t in range(max_len):
        if t == max_len - 1:
            tok = torch.full_like(rows, END)
        else:
            lower, no_visit_end, no_end = state.allowed(
                caps, max_codes=max_codes, max_visits=max_visits, n_tokens=n_tokens)
            u = torch.rand(rows.shape[0], generator=generator, device=device)
            if plain:
                tok = _sample_plain(logits, u, lower, no_visit_end, no_end, temperature)
            else:
                tok = _sample_masked(logits, u, lower, no_visit_end, no_end,
                                     cat_cols, temperature, top_k, top_p)
        out[rows, t] = tok.to(torch.int32)
        state.advance(tok)
        running = tok != END
        n_running = int(running.sum())
        if n_running == 0:
            break
        if n_running < running.shape[0]:
            keep = running.nonzero().squeeze(1)
            rows, tok = rows.index_select(0, keep), tok.index_select(0, keep)
            state.take(keep)
            decoder.keep(keep)
        logits = decoder.step(tok).float()
    return out


def _sample_masked(
    logits: Tensor, u: Tensor, lower: Tensor, no_visit_end: Tensor, no_end: Tensor,
    cat_cols: Tensor, temperature: float, top_k: int, top_p: float,
) -> Tensor:
    """Mask forbidden tokens with ``-inf``, then temperature / top-k / top-p sampling."""
    neg_inf = float("-inf")
    logits[:, N_SPECIAL:].masked_fill_(cat_cols < lower.unsqueeze(1), neg_inf)
    logits[:, PAD] = neg_inf
    logits[:, VISIT_END].masked_fill_(no_visit_end, neg_inf)
    logits[:, END].masked_fill_(no_end, neg_inf)
    return sample_logits(logits, u, temperature=temperature, top_k=top_k, top_p=top_p)


def _sample_plain(
    logits: Tensor, u: Tensor, lower: Tensor, no_visit_end: Tensor, no_end: Tensor,
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
    m_visit = torch.where(no_visit_end, zero, probs[:, VISIT_END])
    m_end = torch.where(no_end, zero, probs[:, END])
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
        tok = torch.where(stuck & ~no_end, END, tok)
    return tok
