"""A neural Stage 2: a small "code head" that picks the full ICD-9 code of each category.

Stage 1 decides which categories a visit holds; Stage 2 picks one code inside each category
occurrence. The table rules of hiergen (``frequency``, ``stratified``, the context-aware
``hiergen.context``) do that with counted weights. The code head here learns it instead: for
each category occurrence it scores the codes of that category from

* the category itself,
* the mean embedding of the visit's other category occurrences,
* the stratum (sex x age band, :func:`hiergen.demographics.stratum`), and
* with ``autoregressive=True``, the mean embedding of the codes drawn before it in the visit,
  in the draw order given by ``rank`` (lowest rank first, ties by position), like the
  context-aware rule's ``ContextTables.rank``.

These are concatenated and go through a one-hidden-layer MLP to a query vector; the logit of a
code is its dot product with the query plus a bias, computed only for the codes of the target
category (a category's codes have contiguous ids, so a slot costs its category's size). It is
trained with cross-entropy on the real codes (teacher forcing), Adam with a one-cycle schedule.
Sampling goes through each visit's categories in draw order, batched over visits, and never
repeats a code within a visit while its category still has unused codes.

Measured with ``benchmarks/bench_code_head.py`` (oracle Stage 1 on NHDS 2010, scores against
held-out visits): the autoregressive head reaches a code pair R2 of 0.982 against 0.959 for the
compiled context-aware table rule; when the head and the tables are fitted on one half of the
training visits and the oracle categories come from the other half (``--disjoint``, so nothing
can be memorised), 0.975 against 0.955.

It is the Stage 2 of the ``code_head`` weighting strategy (``hiergen train --weighting
code_head``, registered by :mod:`hiergen_torch.plugin`); behind the shipped markov Stage 1 it
gains little (code pair R2 0.9595 against 0.9583 on the NHDS protocol), since generated
category sets then limit the pairs, and it draws a few microseconds a code against tens of
nanoseconds (``hiergen generate -n 100000`` with a code-head model: about 35,000 patients/s,
against 125,000 with context tables).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from hiergen.cohort import Cohort
from hiergen.context import visit_order
from hiergen.demographics import N_STRATA, stratum
from hiergen.errors import ModelError
from hiergen.hierarchy import Hierarchy

__all__ = ["CodeHead", "CodeHeadSampler", "fit_code_head", "n_parameters", "padded"]

#: Version of the files written by :meth:`CodeHeadSampler.save`.
FORMAT_VERSION = 1
WEIGHTS_FILE = "code_head.safetensors"
CONFIG_FILE = "code_head.json"

Log = Callable[[str], None]


class CodeHead(nn.Module):
    """Masked-softmax code head; ``autoregressive`` adds the mean of the codes drawn before."""

    def __init__(self, n_categories: int, n_codes: int, offsets: torch.Tensor, dim: int,
                 hidden: int, autoregressive: bool) -> None:
        super().__init__()
        self.autoregressive = autoregressive
        self.dim, self.hidden = dim, hidden
        self.cat = nn.Embedding(n_categories, dim)
        self.ctx = nn.Embedding(n_categories + 1, dim, padding_idx=n_categories)
        self.strat = nn.Embedding(N_STRATA, dim)
        n_in = 3 * dim
        if autoregressive:
            self.prev = nn.Embedding(n_codes + 1, dim, padding_idx=n_codes)
            n_in += dim
        # MLP to a ``dim`` query; the logit of code c is query . out[c] + bias[c].
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.out = nn.Embedding(n_codes + 1, dim)
        self.bias = nn.Embedding(n_codes + 1, 1)
        nn.init.normal_(self.out.weight, std=0.02)
        nn.init.zeros_(self.bias.weight)
        # Each category's codes are the contiguous ids offsets[c] .. offsets[c + 1] - 1.
        self.offsets: torch.Tensor
        self.register_buffer("offsets", offsets)
        self.n_categories = n_categories
        self.n_codes = n_codes

    def context(self, cats: torch.Tensor, strata: torch.Tensor) -> torch.Tensor:
        """Features from the visit alone of every slot of ``cats`` (B, L), padded with
        n_categories: (B, L, F)."""
        e = self.ctx(cats)  # each slot's own embedding, and summed, the visit's
        return self.slot_features(e.sum(1, keepdim=True), self.visit_lengths(cats).unsqueeze(1),
                                  cats, strata.unsqueeze(1).expand_as(cats), mine=e)

    def visit_lengths(self, cats: torch.Tensor) -> torch.Tensor:
        """Number of real slots of each visit of ``cats`` (B, L): (B, 1)."""
        return (cats != self.n_categories).sum(1, keepdim=True)

    def visit_totals(self, cats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of each visit's category embeddings (B, dim) and its number of slots (B, 1)."""
        return self.ctx(cats).sum(1), self.visit_lengths(cats)

    def slot_features(self, total: torch.Tensor, n: torch.Tensor, own: torch.Tensor,
                      strata: torch.Tensor, mine: torch.Tensor | None = None) -> torch.Tensor:
        """Features of slots of category ``own`` in visits of ``visit_totals`` (total, n):
        the category, the mean of the visit's other categories, the stratum. ``mine``: the
        slots' own ``ctx`` embeddings, where the caller has them."""
        mine = self.ctx(own) if mine is None else mine
        others = (total - mine) / (n - 1).clamp(min=1)
        own_e = self.cat(own.clamp(max=self.n_categories - 1))
        return torch.cat([own_e, others, self.strat(strata)], -1)

    def prev_mean(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean embedding of the codes at earlier slots (teacher forcing): (B, L, dim)."""
        e = self.prev(codes)
        before = torch.cumsum(e, 1) - e
        k = torch.arange(codes.shape[1], device=codes.device).clamp(min=1)
        return before / k.view(1, -1, 1)

    def logits(self, feats: torch.Tensor, cats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits over the codes of each slot's category, (T, M) padded with -inf, and the code
        ids (T, M) padded with n_codes; only real (slot, code) pairs are computed."""
        q = self.mlp(feats)
        first = self.offsets[cats]
        size = self.offsets[cats + 1] - first
        tok = torch.repeat_interleave(torch.arange(cats.numel()), size)
        col = torch.arange(tok.numel()) - torch.repeat_interleave(torch.cumsum(size, 0) - size,
                                                                  size)
        code = first[tok] + col
        flat = (q[tok] * self.out(code)).sum(1) + self.bias(code).squeeze(1)
        width = int(size.max())
        lg = torch.full((cats.numel(), width), float("-inf"))
        lg = lg.index_put((tok, col), flat)
        mem = torch.full((cats.numel(), width), self.n_codes, dtype=torch.long)
        mem[tok, col] = code
        return lg, mem


def padded(values: np.ndarray, vo: np.ndarray, fill: int) -> np.ndarray:
    """(n_visits, max length) int64 array of each visit's values, padded with ``fill``."""
    lengths = np.diff(vo)
    width = int(lengths.max()) if lengths.size else 0
    out = np.full((lengths.size, width), fill, dtype=np.int64)
    col = np.arange(values.size) - np.repeat(vo[:-1], lengths)
    out[np.repeat(np.arange(lengths.size), lengths), col] = values
    return out


def batch_loss(model: CodeHead, c: torch.Tensor, y: torch.Tensor,
               s: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of the true codes of a batch of padded visits, and their number."""
    feats = model.context(c, s)
    if model.autoregressive:
        feats = torch.cat([feats, model.prev_mean(y)], -1)
    valid = c != model.n_categories
    lg, mem = model.logits(feats[valid], c[valid])
    target = (mem == y[valid].unsqueeze(1)).float().argmax(1)
    return nn.functional.cross_entropy(lg, target, reduction="sum"), int(valid.sum())


def train_head(model: CodeHead, cats: torch.Tensor, codes: torch.Tensor, strata: torch.Tensor,
               fit: torch.Tensor, val: torch.Tensor, epochs: int, batch: int, lr: float,
               seed: int, log: Log | None = None) -> dict[str, float]:
    """Adam (one-cycle schedule) on the padded visits ``fit``; after each epoch ``log`` gets the
    train NLL and, if ``val`` holds visits, their NLL. Returns the last-epoch mean train NLL
    per code, the last batch loss, the last validation NLL (nan without) and the seconds."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = fit.numel()
    steps = epochs * ((n + batch - 1) // batch)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                 pct_start=0.1) if steps else None)
    t0 = time.perf_counter()
    epoch_nll = last = v_nll = float("nan")
    for epoch in range(epochs):
        model.train()
        order = fit[torch.randperm(n, generator=gen)]
        tot, cnt = 0.0, 0
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            loss, k = batch_loss(model, cats[idx], codes[idx], strata[idx])
            opt.zero_grad()
            (loss / k).backward()
            opt.step()
            if sched is not None:
                sched.step()
            tot += loss.item()
            cnt += k
            last = loss.item() / k
        epoch_nll = tot / cnt
        msg = f"    epoch {epoch + 1}/{epochs}: train NLL {epoch_nll:.4f} nats/code"
        if val.numel():
            model.eval()
            with torch.no_grad():
                parts = [batch_loss(model, cats[j], codes[j], strata[j])
                         for j in val.split(4096)]
            v_nll = sum(p[0].item() for p in parts) / sum(p[1] for p in parts)
            msg += f", validation NLL {v_nll:.4f}"
        if log is not None:
            log(f"{msg} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    return {"train_nll": epoch_nll, "last_batch_loss": last, "validation_nll": v_nll,
            "seconds": time.perf_counter() - t0}


#: Categories of up to this many codes are scored together in one padded batch per column;
#: larger ones one category at a time (sampling time is per-call overhead for the many small
#: categories, arithmetic for the few large ones).
SMALL_CATEGORY = 16
#: Slots per padded batch (bounds its (slots x codes x dim) gather to about 50 MB).
PADDED_CHUNK = 16384


def _mask_held(lg: torch.Tensor, before: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """``lg`` (T, W): logits of codes ``lo[t] + j`` (-inf where j is past the category);
    ``before`` (T, k): codes the visits already hold. The held codes get -inf in the rows
    that keep a code left, so that codes stay distinct while the category has some."""
    rel = before - lo.unsqueeze(1)
    held = (rel >= 0) & (rel < lg.shape[1])
    if not bool(held.any()):
        return lg
    t, j = torch.nonzero(held).unbind(1)
    used = torch.zeros(lg.shape, dtype=torch.bool)
    used[t, rel[t, j]] = True
    left = (torch.isfinite(lg) & ~used).any(1, keepdim=True)
    return lg.masked_fill(used & left, float("-inf"))


def _gumbel(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Gumbel(0, 1) noise: argmax(logits + noise) draws from softmax(logits)."""
    return -torch.log(-torch.log(torch.rand(shape, generator=gen).clamp_(1e-12, 1.0)))


@torch.no_grad()
def sample_head(model: CodeHead, cats: torch.Tensor, strata: torch.Tensor,
                gen: torch.Generator) -> torch.Tensor:
    """Codes (n_visits, L) drawn slot by slot along the columns of the padded ``cats``,
    distinct within a visit while the category has codes left.

    In each column a category of one code is taken without scoring; the slots of categories
    of up to ``SMALL_CATEGORY`` codes are scored in padded batches; the others category by
    category, one (slots x codes) product each.
    """
    n_cat, n_codes = model.n_categories, model.n_codes
    n, width = cats.shape
    out = torch.full((n, width), n_codes, dtype=torch.long)
    prev_sum = torch.zeros(n, model.prev.embedding_dim) if model.autoregressive else None
    offsets = model.offsets
    sizes = offsets[1:] - offsets[:-1]
    bounds = offsets.tolist()
    vectors, bias = model.out.weight, model.bias.weight.squeeze(1)
    total, count = model.visit_totals(cats)
    for k in range(width):
        rows = torch.nonzero(cats[:, k] != n_cat).squeeze(1)
        if rows.numel() == 0:
            break
        ck = cats[rows, k]
        drawn = offsets[ck].clone()  # the first code: right for a category of one code
        multi = torch.nonzero(sizes[ck] > 1).squeeze(1)
        if multi.numel():
            r_m, c_m = rows[multi], ck[multi]
            feats = model.slot_features(total[r_m], count[r_m], c_m, strata[r_m])
            if prev_sum is not None:
                feats = torch.cat([feats, prev_sum[r_m] / max(k, 1)], -1)
            q = model.mlp(feats)
            # Slots are drawn in (rank, position) order: a visit can hold codes of a slot's
            # category only where the slot before is of the same category.
            repeat = (cats[r_m, k - 1] == c_m) if k else torch.zeros_like(c_m, dtype=torch.bool)
            picks = torch.empty_like(c_m)
            small = torch.nonzero(sizes[c_m] <= SMALL_CATEGORY).squeeze(1)
            for part in small.split(PADDED_CHUNK):
                c, lo = c_m[part], offsets[c_m[part]]
                w = int(sizes[c].max())
                j = torch.arange(w)
                valid = j < sizes[c].unsqueeze(1)
                ids = torch.minimum(lo.unsqueeze(1) + j, offsets[c + 1].unsqueeze(1) - 1)
                lg = torch.bmm(vectors[ids], q[part].unsqueeze(2)).squeeze(2) + bias[ids]
                lg = lg.masked_fill(~valid, float("-inf"))
                rep = torch.nonzero(repeat[part]).squeeze(1)
                if rep.numel():
                    lg[rep] = _mask_held(lg[rep], out[r_m[part[rep]], :k], lo[rep])
                picks[part] = lo + (lg + _gumbel(tuple(lg.shape), gen)).argmax(1)
            big = torch.nonzero(sizes[c_m] > SMALL_CATEGORY).squeeze(1)
            if big.numel():
                order = big[torch.argsort(c_m[big], stable=True)]
                uniq, counts = torch.unique_consecutive(c_m[order], return_counts=True)
                start = 0
                for c_id, cnt in zip(uniq.tolist(), counts.tolist(), strict=True):
                    idx = order[start:start + cnt]
                    start += cnt
                    lo_c, hi_c = bounds[c_id], bounds[c_id + 1]
                    lg = torch.addmm(bias[lo_c:hi_c], q[idx], vectors[lo_c:hi_c].T)
                    rep = torch.nonzero(repeat[idx]).squeeze(1)
                    if rep.numel():
                        lg[rep] = _mask_held(lg[rep], out[r_m[idx[rep]], :k],
                                             torch.full((rep.numel(),), lo_c))
                    picks[idx] = lo_c + (lg + _gumbel(tuple(lg.shape), gen)).argmax(1)
            drawn[multi] = picks
        out[rows, k] = drawn
        if prev_sum is not None:
            prev_sum[rows] += model.prev(drawn)
    return out


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (None: leave the setting alone)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _int_array(name: str, value: npt.ArrayLike) -> npt.NDArray[np.int64]:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_rank(rank: npt.ArrayLike, n_categories: int) -> npt.NDArray[np.int32]:
    arr = np.asarray(rank)
    if arr.shape != (n_categories,):
        raise ValueError(f"rank: expected shape ({n_categories},) (one per category), "
                         f"got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"rank: expected integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise ValueError("rank: values must fit in 32 bits")
    return arr.astype(np.int32)


def _check_offsets(offsets: npt.NDArray[np.int64], n_codes: int) -> None:
    if offsets.size < 2 or offsets[0] != 0 or offsets[-1] != n_codes or (
            np.diff(offsets) < 1).any():
        raise ValueError("offsets: expected increasing category offsets from 0 to "
                         f"{n_codes}, every category holding a code")


def n_parameters(hierarchy: Hierarchy, *, autoregressive: bool = True, dim: int = 48,
                 hidden: int = 128) -> int:
    """Number of trainable parameters of a head of these sizes (nothing is allocated)."""
    offsets = torch.from_numpy(np.array(hierarchy.offsets, dtype=np.int64))
    with torch.device("meta"):
        model = CodeHead(hierarchy.n_categories, hierarchy.n_codes, offsets, dim, hidden,
                         autoregressive)
    return sum(p.numel() for p in model.parameters())


class CodeHeadSampler:
    """A trained :class:`CodeHead` with the code offsets of its hierarchy and its draw order.

    ``summary`` holds the training figures (``train_nll``, ``last_batch_loss``,
    ``validation_nll`` in nats per code, ``seconds``; empty after :meth:`load`).
    """

    def __init__(self, model: CodeHead, offsets: npt.ArrayLike, rank: npt.ArrayLike,
                 config: dict[str, Any], summary: dict[str, float] | None = None) -> None:
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_categories = self.offsets.size - 1
        self.n_codes = int(self.offsets[-1])
        _check_offsets(self.offsets, self.n_codes)
        self.rank = _check_rank(rank, self.n_categories)
        if model.n_categories != self.n_categories or model.n_codes != self.n_codes:
            raise ValueError(f"model: sized for {model.n_categories} categories and "
                             f"{model.n_codes} codes, the offsets give {self.n_categories} "
                             f"and {self.n_codes}")
        self.model = model.eval()
        self.config = dict(config)
        self.summary = dict(summary or {})

    @property
    def autoregressive(self) -> bool:
        return self.model.autoregressive

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def sample_visits(self, categories: npt.ArrayLike, visit_offsets: npt.ArrayLike,
                      strata: npt.ArrayLike | int | None = None, *, seed: int,
                      threads: int | None = None) -> npt.NDArray[np.int32]:
        """One code id per category occurrence, in the input order.

        ``categories``: category ids; ``visit_offsets``: int64 CSR offsets of the visits
        (0 first, ``len(categories)`` last); ``strata``: one per visit, a scalar for all, or
        None for stratum 0. Each code lies in its category and codes are distinct within a
        visit while the category has codes left. The same seed gives the same codes (for the
        same ``threads``). ``threads`` sets torch's intra-op thread count for the call and
        restores it after; None keeps the current setting.
        """
        cats = _int_array("categories", categories)
        vo = _int_array("visit_offsets", visit_offsets)
        if vo.size == 0 or vo[0] != 0 or vo[-1] != cats.size or (np.diff(vo) < 0).any():
            raise ValueError(f"visit_offsets: expected non-decreasing offsets from 0 to "
                             f"len(categories) = {cats.size}")
        if cats.size and (cats.min() < 0 or cats.max() >= self.n_categories):
            bad = cats[(cats < 0) | (cats >= self.n_categories)][0]
            raise ValueError(f"categories: id {bad} out of range (0..{self.n_categories - 1})")
        n_visits = vo.size - 1
        if strata is None:
            st = np.zeros(n_visits, dtype=np.int64)
        else:
            st_arr = np.asarray(strata)
            if st_arr.size and st_arr.dtype.kind not in "iu":
                raise ValueError(f"strata: expected integers, got dtype {st_arr.dtype}")
            if st_arr.ndim > 1 or (st_arr.ndim == 1 and st_arr.size != n_visits):
                raise ValueError(f"strata: expected one per visit ({n_visits}) or a scalar, "
                                 f"got shape {st_arr.shape}")
            st = np.broadcast_to(st_arr.astype(np.int64), (n_visits,)).copy()
            if st.size and (st.min() < 0 or st.max() >= N_STRATA):
                raise ValueError(f"strata: ids must be in 0..{N_STRATA - 1}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed: expected an integer, got {seed!r}")
        if threads is not None:
            _positive_int("threads", threads)
        out = np.empty(cats.size, dtype=np.int32)
        if cats.size == 0:
            return out
        perm = visit_order(cats, vo, self.rank)
        cat_pad = torch.from_numpy(padded(cats[perm], vo, self.n_categories))
        gen = torch.Generator().manual_seed(int(seed))
        with _threads(threads):
            drawn = sample_head(self.model, cat_pad, torch.from_numpy(st), gen)
        out[perm] = drawn[cat_pad != self.n_categories].numpy()
        return out

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        """Write ``code_head.safetensors`` (weights) and ``code_head.json`` (config)."""
        from safetensors.torch import save_file

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()
                 if k != "offsets"}
        save_file(state, str(path / WEIGHTS_FILE))
        config = {
            "format_version": FORMAT_VERSION,
            "autoregressive": self.autoregressive,
            "dim": self.model.dim,
            "hidden": self.model.hidden,
            "n_categories": self.n_categories,
            "n_codes": self.n_codes,
            "offsets": self.offsets.tolist(),
            "rank": self.rank.tolist(),
            "training": self.config,
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")

    @classmethod
    def load(cls, directory: Path | str) -> CodeHeadSampler:
        """Read a sampler written by :meth:`save` (``ModelError`` naming the bad file)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(directory)
        cfg_path, w_path = path / CONFIG_FILE, path / WEIGHTS_FILE
        for f in (cfg_path, w_path):
            if not f.is_file():
                raise ModelError(f"{f}: no such file (not a code head saved by "
                                 "CodeHeadSampler.save?)")
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{cfg_path}: unreadable code head config ({exc})") from exc
        if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
            version = cfg.get("format_version") if isinstance(cfg, dict) else None
            raise ModelError(f"{cfg_path}: format_version {version!r} is not supported "
                             f"(this hiergen-torch reads {FORMAT_VERSION})")
        try:
            offsets = np.asarray(cfg["offsets"], dtype=np.int64)
            n_categories, n_codes = int(cfg["n_categories"]), int(cfg["n_codes"])
            if offsets.shape != (n_categories + 1,):
                raise ValueError(f"{offsets.size} offsets for {n_categories} categories")
            _check_offsets(offsets, n_codes)
            model = CodeHead(n_categories, n_codes, torch.from_numpy(offsets),
                             _positive_int("dim", cfg["dim"]),
                             _positive_int("hidden", cfg["hidden"]),
                             bool(cfg["autoregressive"]))
            rank = _check_rank(np.asarray(cfg["rank"]), n_categories)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{cfg_path}: invalid code head config ({exc})") from exc
        try:
            state = load_file(str(w_path))
        except (OSError, SafetensorError) as exc:
            raise ModelError(f"{w_path}: unreadable weights ({exc})") from exc
        state["offsets"] = model.offsets
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{w_path}: weights do not fit {cfg_path} ({exc})") from exc
        return cls(model, offsets, rank, cfg.get("training", {}))


def fit_code_head(hierarchy: Hierarchy, cohort: Cohort, rank: npt.ArrayLike, *,
                  autoregressive: bool = True, dim: int = 48, hidden: int = 128,
                  epochs: int = 5, batch: int = 256, lr: float = 3e-3, seed: int = 0,
                  val_fraction: float = 0.0, log: Log | None = None) -> CodeHeadSampler:
    """Train a code head on the visits of ``cohort`` and return its sampler.

    ``rank``: (n_categories,) ints, the draw order (e.g. ``ContextTables.rank``); the
    autoregressive head conditions each code on the codes of lower-ranked categories.
    ``dim``: embedding and query size; ``hidden``: MLP width; ``batch``: visits per step;
    ``lr``: peak Adam learning rate; ``seed``: initialisation, shuffling and the validation
    split (the global torch RNG is left untouched). ``val_fraction`` of the visits is held out
    of training and its NLL reported to ``log`` after each epoch (``log`` also gets the train
    NLL; None: silent).
    """
    dim = _positive_int("dim", dim)
    hidden = _positive_int("hidden", hidden)
    epochs = _positive_int("epochs", epochs, 0)
    batch = _positive_int("batch", batch)
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")
    if not isinstance(val_fraction, (int, float)) or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    if log is not None and not callable(log):
        raise ValueError(f"log: expected a callable taking a str or None, got {log!r}")
    n_cat, n_codes = hierarchy.n_categories, hierarchy.n_codes
    order = _check_rank(rank, n_cat)
    if cohort.n_visits == 0 or cohort.codes.size == 0:
        raise ValueError(f"cohort: no codes to train on ({cohort.n_visits} visits)")
    try:
        codes = cohort.code_ids_in(hierarchy).astype(np.int64)
    except KeyError as exc:
        raise ValueError(f"cohort: a code is missing from the hierarchy ({exc})") from exc
    cats = hierarchy.code_category[codes].astype(np.int64)
    vo = np.asarray(cohort.visit_offsets, dtype=np.int64)
    perm = visit_order(cats, vo, order)
    cat_pad = torch.from_numpy(padded(cats[perm], vo, n_cat))
    code_pad = torch.from_numpy(padded(codes[perm], vo, n_codes))
    strata = torch.from_numpy(stratum(cohort.sex, cohort.age).astype(np.int64))

    n_visits = cohort.n_visits
    visits = np.random.default_rng(seed).permutation(n_visits)
    visits = visits[np.diff(vo)[visits] > 0]  # empty visits have nothing to learn from
    n_val = int(round(val_fraction * n_visits))
    val, fit = torch.from_numpy(visits[:n_val]), torch.from_numpy(visits[n_val:])
    if fit.numel() == 0:
        raise ValueError(f"val_fraction: {val_fraction} leaves no visit with codes to train on")

    offsets = np.array(hierarchy.offsets, dtype=np.int64)  # a writable copy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CodeHead(n_cat, n_codes, torch.from_numpy(offsets), dim, hidden,
                         autoregressive)
    summary = train_head(model, cat_pad, code_pad, strata, fit, val, epochs, batch, lr, seed,
                         log)
    summary["n_fit"], summary["n_validation"] = float(fit.numel()), float(val.numel())
    config = {"epochs": epochs, "batch": batch, "lr": lr, "seed": int(seed),
              "val_fraction": val_fraction}
    return CodeHeadSampler(model, offsets, order, config, summary)
