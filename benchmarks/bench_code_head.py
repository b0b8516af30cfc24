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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_context import DEFAULT_DATA, scores  # noqa: E402

from hiergen.context import build_context_tables, context_index  # noqa: E402
from hiergen.demographics import stratum  # noqa: E402
from hiergen.hierarchy import Hierarchy  # noqa: E402
from hiergen.loaders import load  # noqa: E402
from hiergen.weighting import build_weights  # noqa: E402
from hiergen_torch.code_head import fit_code_head, n_parameters  # noqa: E402


def copied(codes: np.ndarray, real: np.ndarray, vo: np.ndarray) -> float:
    """Fraction of training visits whose drawn code set equals the real one (memorisation;
    needs no held-out data)."""
    visit = np.repeat(np.arange(vo.size - 1), np.diff(vo)).astype(np.int64)
    n = int(max(codes.max(), real.max())) + 1
    same = np.sort(visit * n + codes) == np.sort(visit * n + real)
    return float(np.logical_and.reduceat(same, vo[:-1]).mean())


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

    f_strata = stratum(fit_on.sex, fit_on.age).astype(np.int32)
    f_cats = fit_on.category_ids_in(hierarchy)
    f_vo = fit_on.visit_offsets
    real = fit_on.code_ids_in(hierarchy).astype(np.int64)
    # The heads hold out this many of the fitted visits to report a validation NLL.
    n_fit = fit_on.n_visits - int(round(args.val_fraction * fit_on.n_visits))

    # Reference NLL of the stratified table on the same training codes.
    f_visit = np.repeat(np.arange(f_vo.size - 1), np.diff(f_vo))
    w = strat[f_strata[f_visit], real]
    cat_tot = np.add.reduceat(strat, hierarchy.offsets[:-1], axis=1)
    tot = cat_tot[f_strata[f_visit], f_cats]
    print(f"stratified table, train NLL {-np.mean(np.log(w / tot)):.4f} nats/code")

    settings = (f"dim {args.dim}, hidden {args.hidden} (one hidden layer, ReLU, to a {args.dim}-d "
                f"query), Adam one-cycle peak lr {args.lr:g}, {args.epochs} epochs, "
                f"{args.batch} visits/batch, seed {args.seed}, fitted on {n_fit:,} "
                f"training visits, 1 thread")
    print(f"settings: {settings}")
    names = {1: "code head | categories of the visit",
             2: "code head | codes drawn before + categories"}
    for which in (int(m) for m in args.models.split(",")):
        n_params = n_parameters(hierarchy, autoregressive=which == 2, dim=args.dim,
                                hidden=args.hidden)
        print(f"\nmodel {which}: {names[which]}, {n_params:,} parameters", flush=True)
        head = fit_code_head(hierarchy, fit_on, tables.rank, autoregressive=which == 2,
                             dim=args.dim, hidden=args.hidden, epochs=args.epochs,
                             batch=args.batch, lr=args.lr, seed=args.seed,
                             val_fraction=args.val_fraction,
                             log=lambda line: print(line, flush=True))
        res = []
        t0 = time.perf_counter()
        for seed in (1, 2):
            codes = head.sample_visits(cats, vo, strata, seed=seed)
            res.append([*scores(held, oracle, hierarchy, codes).split(),
                        f"{copied(codes, real_codes, vo):.1%}"])
        t_sample = (time.perf_counter() - t0) / 2
        summ = head.summary
        print(f"  trained in {summ['seconds']:.0f} s; last-epoch train NLL "
              f"{summ['train_nll']:.4f}, last batch loss {summ['last_batch_loss']:.4f} "
              f"nats/code; sampling+scoring {t_sample:.1f} s per seed")
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
