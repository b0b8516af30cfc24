"""Benchmark of context-aware Stage 2 (issue 8): the oracle protocol on NHDS 2010.

Stage 1 is replaced by the real category multisets of the training visits (80/20 split by
record, fixed seed); Stage 2 draws the codes; code unigram and code pair R2 are scored against
the held-out visits (``hiergen.evaluate.fidelity``). Prints the context-free (frequency,
stratified) and context-aware rows side by side with the real-vs-real ceiling, the number and
bytes of context tables, and ns per code of the compiled context-aware and context-free paths
measured in the same run (1 and 2 threads).

    python benchmarks/bench_context.py [--data PATH] [--reference] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.context import build_context_tables, context_index, sample_visits_reference
from hiergen.demographics import stratum
from hiergen.evaluate.fidelity import pair_r2, unigram_r2
from hiergen.hierarchy import Hierarchy
from hiergen.loaders import load
from hiergen.weighting import build_weights

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/nhds2010/NHDS10.PU.txt.bz2"


def scores(real: Cohort, template: Cohort, hierarchy: Hierarchy, codes: np.ndarray) -> str:
    syn = Cohort(
        template.patient_ids, template.patient_offsets, template.visit_offsets,
        np.asarray(codes, dtype=np.int32), hierarchy.codes, template.sex, template.age,
    )
    u, p = unigram_r2(real, syn), pair_r2(real, syn)
    return f"{u['code_unigram_r2']:8.4f} {p['code_pair_r2']:8.4f}"


def ns_per_code(fn: Any, n: int, repeats: int) -> float:
    fn(0)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r + 1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=0, help="split seed")
    ap.add_argument("--min-support", type=int, default=30)
    ap.add_argument("--shrinkage", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tile", type=int, default=4, help="copies of the oracle for timing")
    ap.add_argument("--reference", action="store_true", help="also score the numpy variants")
    ap.add_argument("--core", default="hiergen._core", help="compiled module (development)")
    args = ap.parse_args()
    core = importlib.import_module(args.core)

    t0 = time.perf_counter()
    cohort, _ = load(args.data, format="nhds")
    train, held = cohort.split(0.2, seed=args.seed)
    hierarchy = Hierarchy.from_codes(train.vocab)
    cats = train.category_ids_in(hierarchy).astype(np.int32)
    vo = train.visit_offsets
    strata = stratum(train.sex, train.age).astype(np.int32)
    print(f"NHDS: {train.n_visits:,} training / {held.n_visits:,} held-out visits, "
          f"{cats.size:,} training codes ({time.perf_counter() - t0:.1f} s)")

    freq = build_weights("frequency", hierarchy, train).weights
    strat = build_weights("stratified", hierarchy, train).weights
    t0 = time.perf_counter()
    tables = build_context_tables(
        hierarchy, train, min_support=args.min_support, shrinkage=args.shrinkage
    )
    t_build = time.perf_counter() - t0
    index = context_index(strat, tables, core=core)
    free_freq = core.CategoryIndex(hierarchy.offsets, freq, zero_weight="uniform")

    print(f"\n{'Stage 2 (oracle Stage 1)':58s} {'uni R2':>8s} {'pair R2':>8s}")
    real_codes = train.code_ids_in(hierarchy)
    print(f"{'ceiling: real training visits':58s} {scores(held, train, hierarchy, real_codes)}")
    rows = [
        ("frequency in the category", free_freq.sample_visits(cats, vo, seed=1)),
        ("stratified (sex x age band, pooled under 20 visits)",
         index.sample_visits(cats, vo, strata, seed=1, context=False)),
        (f"context-aware, compiled (min_support {args.min_support}, shrinkage "
         f"{args.shrinkage:g})", index.sample_visits(cats, vo, strata, seed=1)),
    ]
    for name, codes in rows:
        print(f"{name:58s} {scores(held, train, hierarchy, codes)}")
    if args.reference:
        variants = [
            ("reference: same rule (numpy)", tables, {}),
            ("reference: + one Gibbs-like sweep", tables, {"sweeps": 1}),
            ("reference: min_support 10",
             build_context_tables(hierarchy, train, min_support=10, shrinkage=args.shrinkage), {}),
            ("reference: informative-first order",
             build_context_tables(hierarchy, train, min_support=args.min_support,
                                  shrinkage=args.shrinkage, order="informative"), {}),
            ("reference: no shrinkage",
             build_context_tables(hierarchy, train, min_support=args.min_support,
                                  shrinkage=0.0), {}),
        ]
        for name, t, kw in variants:
            codes = sample_visits_reference(strat, t, cats, vo, strata, seed=1, **kw)
            print(f"{name:58s} {scores(held, train, hierarchy, codes)}")

    print(f"\ncontext tables: {tables.n_tables:,} (min_support {args.min_support}); arrays "
          f"{tables.nbytes / 1e6:.2f} MB; compiled context index {index.nbytes / 1e6:.2f} MB; "
          f"built in {t_build:.1f} s")

    big = np.tile(cats, args.tile)
    big_vo = np.concatenate([[0], np.cumsum(np.tile(np.diff(vo), args.tile))]).astype(np.int64)
    big_st = np.tile(strata, args.tile)
    out = np.empty_like(big)
    flat_st = np.repeat(big_st, np.diff(big_vo))
    print(f"\nspeed on {big.size:,} codes ({args.tile} copies of the oracle), median of "
          f"{args.repeats}, ns per code:")
    for threads in (1, 2):
        ctx = ns_per_code(lambda s, t=threads: index.sample_visits(
            big, big_vo, big_st, seed=s, out=out, threads=t), big.size, args.repeats)
        free = ns_per_code(lambda s, t=threads: index.sample_visits(
            big, big_vo, big_st, seed=s, out=out, threads=t, context=False),
            big.size, args.repeats)
        flat = ns_per_code(lambda s, t=threads: index.index.sample(
            big, flat_st, seed=s, out=out, threads=t), big.size, args.repeats)
        print(f"  {threads} thread(s): context-aware {ctx:6.2f}  context-free sample_visits "
              f"{free:6.2f}  context-free sample {flat:6.2f}  ratio ctx/free {ctx / free:4.2f}")


if __name__ == "__main__":
    main()
