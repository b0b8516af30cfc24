"""Does a small neural "code head" beat the context-aware Stage 2 rule? Oracle protocol, NHDS 2010.

The protocol is the one of ``bench_context.py``: the NHDS 2010 records are split 80/20 by
record (fixed seed), the hierarchy is built from the training vocabulary, and Stage 1 is
replaced by an oracle, the real category multiset of every training visit. Only Stage 2 varies:
it draws one code inside each category occurrence (codes distinct within a visit, unless a
category's codes are used up). The synthetic visits are then scored against the held-out
visits: code unigram R2 and code pair R2 (``hiergen.evaluate.fidelity``). Because Stage 1 is
exact, the scores isolate how well Stage 2 reproduces which codes, and which pairs of codes,
occur; the real training visits themselves score the ceiling.

Two neural heads are trained on the training visits only (the held-out visits are used for
nothing but the final scores):

1. ``categories``: p(code | its category, the other categories of the visit, stratum). A
   category embedding, the mean embedding of the visit's other category occurrences (a
   separate table; zero for a one-code visit) and a stratum (sex x age band) embedding are
   concatenated and go through an MLP (one hidden layer of 128, ReLU) to a query vector ``q``
   of the embedding size; the logit of code ``c`` is ``q . out[c] + bias[c]``, computed only
   for the codes of the target category (the masked softmax over all codes, restricted to the
   category's contiguous id range, so a slot costs its category's size, not 8,083 codes).
2. ``codes drawn before + categories``: the same, plus the mean embedding of the codes drawn
   earlier in the visit, in the canonical order of the context rule (``tables.rank`` of the
   category ascending, ties by position). Training is teacher-forced with the real codes;
   sampling feeds back the model's own draws. This is the neural counterpart of the rule's
   "condition on the most informative code already drawn".

Both are trained with cross-entropy on the true code: Adam with a one-cycle schedule (peak lr
3e-3), 256 visits per minibatch, fixed seeds. The default of 5 epochs was chosen on the NLL of a
10% validation slice of the TRAINING visits (``--val-fraction 0.1``; the validation NLL stops
falling after 4-5 epochs), never on the held-out scores. Sampling goes through each visit's
categories in the canonical order, batched over all visits at draw step k, excluding codes
already drawn in the visit (all allowed again when a category's codes are used up), with two
sampling seeds per model. Reference rows in the same run: the stratified and the compiled
context-aware rule (min_support 30, shrinkage 5), both seed 1, exactly as in
``bench_context.py``. The oracle protocol rewards a Stage 2 that memorises the training visits
(they score the ceiling), so every row also reports the share of training visits whose drawn
code set equals the real one. One thread throughout (``torch.set_num_threads(1)``).

``--disjoint`` removes memorisation altogether: every Stage 2 (tables, stratified weights and
the heads) is fitted on one half of the training visits (split by record), and the oracle
Stage 1 is the category multisets of the other half; the ceiling row is then that half's own
codes.

    python benchmarks/bench_code_head.py [--epochs 5] [--dim 48] [--hidden 128] [--seed 0]
    python benchmarks/bench_code_head.py --disjoint
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_context import DEFAULT_DATA, scores  # noqa: E402

from hiergen.cohort import Cohort  # noqa: E402
from hiergen.context import build_context_tables, context_index, visit_order  # noqa: E402
from hiergen.demographics import N_STRATA, stratum  # noqa: E402
from hiergen.hierarchy import Hierarchy  # noqa: E402
from hiergen.loaders import load  # noqa: E402
from hiergen.weighting import build_weights  # noqa: E402


class CodeHead(nn.Module):
    """Masked-softmax code head; ``autoregressive`` adds the mean of the codes drawn before."""

    def __init__(self, n_categories: int, n_codes: int, offsets: torch.Tensor, dim: int,
                 hidden: int, autoregressive: bool) -> None:
        super().__init__()
        self.autoregressive = autoregressive
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
        self.register_buffer("offsets", offsets)
        self.n_codes = n_codes

    def context(self, cats: torch.Tensor, strata: torch.Tensor,
                slot: int | None = None) -> torch.Tensor:
        """Features from the visit alone, ``cats`` (B, L) padded with n_categories: (B, L, F),
        or (B, F) for one ``slot``."""
        n_cat = self.ctx.padding_idx
        n = (cats != n_cat).sum(1, keepdim=True)
        e = self.ctx(cats)
        mine = e if slot is None else e[:, slot]
        own = cats if slot is None else cats[:, slot]
        total = e.sum(1)
        if slot is None:
            total, n = total.unsqueeze(1), n.unsqueeze(1)
        others = (total - mine) / (n - 1).clamp(min=1)
        own_e = self.cat(own.clamp(max=n_cat - 1))
        st = self.strat(strata)
        st = st.unsqueeze(1).expand_as(own_e) if slot is None else st
        return torch.cat([own_e, others, st], -1)

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


def copied(codes: np.ndarray, real: np.ndarray, vo: np.ndarray) -> float:
    """Fraction of training visits whose drawn code set equals the real one (memorisation;
    needs no held-out data)."""
    visit = np.repeat(np.arange(vo.size - 1), np.diff(vo)).astype(np.int64)
    n = int(max(codes.max(), real.max())) + 1
    same = np.sort(visit * n + codes) == np.sort(visit * n + real)
    return float(np.logical_and.reduceat(same, vo[:-1]).mean())


def padded(values: np.ndarray, vo: np.ndarray, fill: int) -> np.ndarray:
    """(n_visits, max length) array of each visit's values, padded with ``fill``."""
    lengths = np.diff(vo)
    out = np.full((lengths.size, int(lengths.max())), fill, dtype=np.int64)
    col = np.arange(values.size) - np.repeat(vo[:-1], lengths)
    out[np.repeat(np.arange(lengths.size), lengths), col] = values
    return out


def batch_loss(model: CodeHead, c: torch.Tensor, y: torch.Tensor,
               s: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of the true codes of a batch of padded visits, and their number."""
    feats = model.context(c, s)
    if model.autoregressive:
        feats = torch.cat([feats, model.prev_mean(y)], -1)
    valid = c != model.ctx.padding_idx
    lg, mem = model.logits(feats[valid], c[valid])
    target = (mem == y[valid].unsqueeze(1)).float().argmax(1)
    return nn.functional.cross_entropy(lg, target, reduction="sum"), int(valid.sum())


def train_head(model: CodeHead, cats: torch.Tensor, codes: torch.Tensor, strata: torch.Tensor,
               fit: torch.Tensor, val: torch.Tensor, epochs: int, batch: int, lr: float,
               seed: int) -> tuple[float, float, float]:
    """Adam (one-cycle schedule) on the visits ``fit``; prints the NLL of the visits ``val``
    (a slice of the training visits, if any) after each epoch. Returns (last-epoch mean train
    NLL per code, last batch loss, seconds)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = fit.numel()
    steps = epochs * ((n + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    t0 = time.perf_counter()
    epoch_nll = last = float("nan")
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
        print(f"{msg} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return epoch_nll, last, time.perf_counter() - t0


@torch.no_grad()
def sample_head(model: CodeHead, cats: torch.Tensor, strata: torch.Tensor,
                seed: int) -> torch.Tensor:
    """Codes (n_visits, L) drawn slot by slot in canonical order, distinct within a visit."""
    gen = torch.Generator().manual_seed(seed)
    n_cat, n_codes = model.ctx.padding_idx, model.n_codes
    n, width = cats.shape
    out = torch.full((n, width), n_codes, dtype=torch.long)
    prev_sum = torch.zeros(n, model.prev.embedding_dim) if model.autoregressive else None
    for k in range(width):
        rows = torch.nonzero(cats[:, k] != n_cat).squeeze(1)
        if rows.numel() == 0:
            break
        feats = model.context(cats[rows], strata[rows], k)
        if prev_sum is not None:
            feats = torch.cat([feats, prev_sum[rows] / max(k, 1)], -1)
        lg, mem = model.logits(feats, cats[rows, k])
        if k:
            used = (mem.unsqueeze(2) == out[rows, :k].unsqueeze(1)).any(2)
            free = torch.isfinite(lg) & ~used
            lg = torch.where(used & free.any(1, keepdim=True), float("-inf"), lg)
        u = torch.rand(lg.shape, generator=gen).clamp_(1e-12, 1.0)
        pick = (lg - torch.log(-torch.log(u))).argmax(1)
        drawn = mem.gather(1, pick.unsqueeze(1)).squeeze(1)
        out[rows, k] = drawn
        if prev_sum is not None:
            prev_sum[rows] += model.prev(drawn)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=48, help="embedding size")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=256, help="visits per minibatch")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate")
    ap.add_argument("--seed", type=int, default=0, help="init and shuffling seed")
    ap.add_argument("--val-fraction", type=float, default=0.0,
                    help="fit on the rest of the training visits, report NLL on this fraction")
    ap.add_argument("--models", default="1,2", help="which heads to train (1, 2 or 1,2)")
    ap.add_argument("--disjoint", action="store_true",
                    help="fit every Stage 2 on one half of the training visits and take the "
                         "oracle Stage 1 from the other half (no memorisation possible)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()

    cohort, _ = load(args.data, format="nhds")
    train, held = cohort.split(0.2, seed=args.split_seed)
    hierarchy = Hierarchy.from_codes(train.vocab)
    # Who is fitted on, and whose category multisets are the oracle Stage 1.
    fit_on, oracle = train.split(0.5, seed=1) if args.disjoint else (train, train)
    cats = oracle.category_ids_in(hierarchy).astype(np.int32)
    vo = oracle.visit_offsets
    strata = stratum(oracle.sex, oracle.age).astype(np.int32)
    print(f"NHDS: {train.n_visits:,} training / {held.n_visits:,} held-out visits, "
          f"{hierarchy.n_categories:,} categories, {hierarchy.n_codes:,} codes; Stage 2 fitted "
          f"on {fit_on.n_visits:,} visits, oracle Stage 1 from {oracle.n_visits:,} "
          f"({'disjoint halves of the training visits' if args.disjoint else 'the same'})")

    strat = build_weights("stratified", hierarchy, fit_on).weights
    tables = build_context_tables(hierarchy, fit_on, min_support=30, shrinkage=5.0)
    index = context_index(strat, tables)
    real_codes = oracle.code_ids_in(hierarchy)
    rows = [
        ("ceiling: the oracle's real visits", real_codes),
        ("stratified (sex x age band, pooled under 20 visits)",
         index.sample_visits(cats, vo, strata, seed=1, context=False)),
        ("context-aware, compiled (min_support 30, shrinkage 5)",
         index.sample_visits(cats, vo, strata, seed=1)),
    ]
    lines = [f"{name:58s} {scores(held, oracle, hierarchy, codes)}   "
             f"{copied(codes, real_codes, vo):6.1%}" for name, codes in rows]

    # Each visit's slots in the canonical order, padded: the fitted visits and the oracle's.
    n_cat, n_codes = hierarchy.n_categories, hierarchy.n_codes

    def slots(c: Cohort) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        c_cats = c.category_ids_in(hierarchy).astype(np.int64)
        c_perm = visit_order(c_cats, c.visit_offsets, tables.rank)
        c_real = c.code_ids_in(hierarchy).astype(np.int64)
        return (torch.from_numpy(padded(c_cats[c_perm], c.visit_offsets, n_cat)),
                torch.from_numpy(padded(c_real[c_perm], c.visit_offsets, n_codes)),
                torch.from_numpy(stratum(c.sex, c.age).astype(np.int64)), c_perm)

    cat_pad, code_pad, st, _ = slots(fit_on)
    o_cat_pad, _, o_st, perm = slots(oracle)
    offsets_t = torch.from_numpy(hierarchy.offsets.astype(np.int64))
    filled = o_cat_pad != n_cat
    # Optional validation slice of the fitted visits (to choose epochs without the held-out).
    visits = torch.from_numpy(np.random.default_rng(args.seed).permutation(fit_on.n_visits))
    n_val = int(round(args.val_fraction * fit_on.n_visits))
    val, fit = visits[:n_val], visits[n_val:]
    f_strata = stratum(fit_on.sex, fit_on.age).astype(np.int32)
    f_cats = fit_on.category_ids_in(hierarchy)
    f_vo = fit_on.visit_offsets
    real = fit_on.code_ids_in(hierarchy).astype(np.int64)

    # Reference NLL of the stratified table on the same training codes.
    f_visit = np.repeat(np.arange(f_vo.size - 1), np.diff(f_vo))
    w = strat[f_strata[f_visit], real]
    cat_tot = np.add.reduceat(strat, hierarchy.offsets[:-1], axis=1)
    tot = cat_tot[f_strata[f_visit], f_cats]
    print(f"stratified table, train NLL {-np.mean(np.log(w / tot)):.4f} nats/code")

    settings = (f"dim {args.dim}, hidden {args.hidden} (one hidden layer, ReLU, to a {args.dim}-d "
                f"query), Adam one-cycle peak lr {args.lr:g}, {args.epochs} epochs, "
                f"{args.batch} visits/batch, seed {args.seed}, fitted on {fit.numel():,} "
                f"training visits, 1 thread")
    print(f"settings: {settings}")
    names = {1: "code head | categories of the visit",
             2: "code head | codes drawn before + categories"}
    for which in (int(m) for m in args.models.split(",")):
        torch.manual_seed(args.seed)
        model = CodeHead(n_cat, n_codes, offsets_t, args.dim, args.hidden, which == 2)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"\nmodel {which}: {names[which]}, {n_params:,} parameters", flush=True)
        nll, last, secs = train_head(model, cat_pad, code_pad, st, fit, val, args.epochs,
                                     args.batch, args.lr, args.seed)
        model.eval()
        res = []
        t0 = time.perf_counter()
        for seed in (1, 2):
            drawn = sample_head(model, o_cat_pad, o_st, seed)
            codes = np.empty(cats.size, dtype=np.int32)
            codes[perm] = drawn[filled].numpy()
            res.append([*scores(held, oracle, hierarchy, codes).split(),
                        f"{copied(codes, real_codes, vo):.1%}"])
        t_sample = (time.perf_counter() - t0) / 2
        print(f"  trained in {secs:.0f} s; last-epoch train NLL {nll:.4f}, last batch loss "
              f"{last:.4f} nats/code; sampling+scoring {t_sample:.1f} s per seed")
        uni = " / ".join(r[0] for r in res)
        pair = " / ".join(r[1] for r in res)
        same = " / ".join(r[2] for r in res)
        lines.append(f"{'model ' + str(which) + ': ' + names[which]:58s} uni {uni}  pair {pair}"
                     f"  copied {same}")

    print(f"\n{'Stage 2 (oracle Stage 1); models: seed 1 / seed 2':58s} {'uni R2':>8s} "
          f"{'pair R2':>8s}   copied")
    for line in lines:
        print(line)
    print("copied: oracle visits whose drawn code set equals the real one (memorisation, "
          "when the oracle visits are the fitted ones)")
    print(f"\ntotal wall {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
