"""Benchmark of context-aware Stage 2 (issue 8): the oracle protocol on NHDS 2010.

Stage 1 is replaced by the real category multisets of the training visits (80/20 split by
record, fixed seed); Stage 2 draws the codes; code unigram and code pair R2 are scored against
the held-out visits (``hiergen.evaluate.fidelity``). Prints the context-free (frequency,
stratified) and context-aware rows side by side with the real-vs-real ceiling, the number and
bytes of context tables, and ns per code of the compiled context-aware and context-free paths
measured in the same run (1 and 2 threads).

    python benchmarks/bench_context.py [--data PATH] [--reference] [--repeats 5]
    # speed against another build of the extension (e.g. the previous commit's), same run:
    # (a copy of another build's _core*.so in /tmp/old, imported as the top-level module _core)
    PYTHONPATH=/tmp/old python benchmarks/bench_context.py --baseline-core _core
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=0, help="split seed")
    ap.add_argument("--min-support", type=int, default=30)
    ap.add_argument("--shrinkage", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tile", type=int, default=4, help="copies of the oracle for timing")
    ap.add_argument("--reference", action="store_true", help="also score the numpy variants")
    ap.add_argument("--max-tables", type=int, default=0,
                    help="keep only the best-scoring tables (0: all), as a size cap")
    ap.add_argument("--core", default="hiergen._core", help="compiled module (development)")
    ap.add_argument("--baseline-core", default=None,
                    help="another build of the compiled module to time in the same rounds")
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
        hierarchy, train, min_support=args.min_support, shrinkage=args.shrinkage,
        max_tables=args.max_tables,
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
    from hiergen.context import as_stored

    stored = as_stored(tables)
    rows.append(("context-aware, as stored in a model (float16 weights)",
                 context_index(strat, stored, core=core).sample_visits(cats, vo, strata, seed=1)))
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

    import tempfile

    from hiergen.context import save_context_tables

    with tempfile.TemporaryDirectory() as tmp:
        on_disk = save_context_tables(tables, tmp, compact=True).stat().st_size
    print(f"\ncontext tables: {tables.n_tables:,} (min_support {args.min_support}, max_tables "
          f"{args.max_tables or 'all'}); arrays {tables.nbytes / 1e6:.2f} MB, compact file "
          f"{on_disk / 1e6:.2f} MB; compiled context index {index.nbytes / 1e6:.2f} MB; "
          f"built in {t_build:.1f} s")

    big = np.tile(cats, args.tile)
    big_vo = np.concatenate([[0], np.cumsum(np.tile(np.diff(vo), args.tile))]).astype(np.int64)
    big_st = np.tile(strata, args.tile)
    out = np.empty_like(big)
    flat_st = np.repeat(big_st, np.diff(big_vo))
    print(f"\nspeed on {big.size:,} codes ({args.tile} copies of the oracle), median of "
          f"{args.repeats}, ns per code:")
    indexes = {"": index}
    if args.baseline_core:
        old = importlib.import_module(args.baseline_core)
        indexes["baseline "] = context_index(strat, tables, core=old)
    for threads in (1, 2):
        # Interleaved rounds (every method once per round): load changes on a shared machine
        # hit all alike; ratios are medians of per-round ratios.
        methods: dict[str, Any] = {}
        for tag, ix in indexes.items():
            methods[f"{tag}context-aware"] = lambda s, ix=ix, t=threads: ix.sample_visits(
                big, big_vo, big_st, seed=s, out=out, threads=t)
            methods[f"{tag}context-free sample_visits"] = lambda s, ix=ix, t=threads: (
                ix.sample_visits(big, big_vo, big_st, seed=s, out=out, threads=t, context=False))
            methods[f"{tag}context-free sample"] = lambda s, ix=ix, t=threads: ix.index.sample(
                big, flat_st, seed=s, out=out, threads=t)
        rounds: dict[str, list[float]] = {k: [] for k in methods}
        for fn in methods.values():
            fn(0)
        for r in range(args.repeats):
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn(r + 1)
                rounds[name].append((time.perf_counter() - t0) / big.size * 1e9)
        med = {k: statistics.median(v) for k, v in rounds.items()}

        def ratio(a: str, b: str, rounds: dict[str, list[float]] = rounds) -> float:
            return statistics.median(x / y for x, y in zip(rounds[a], rounds[b], strict=True))

        for tag in indexes:
            print(f"  {threads} thread(s) {tag or 'this build '}: context-aware "
                  f"{med[tag + 'context-aware']:6.2f}  context-free sample_visits "
                  f"{med[tag + 'context-free sample_visits']:6.2f}  context-free sample "
                  f"{med[tag + 'context-free sample']:6.2f}  ratio ctx/free "
                  f"{ratio(tag + 'context-aware', tag + 'context-free sample_visits'):4.2f}")
        if args.baseline_core:
            free = "context-free sample_visits"
            print(f"  {threads} thread(s) baseline / this build: context-aware "
                  f"{ratio('baseline context-aware', 'context-aware'):4.2f}x, context-free "
                  f"sample_visits {ratio('baseline ' + free, free):4.2f}x, sample "
                  f"{ratio('baseline context-free sample', 'context-free sample'):4.2f}x")


if __name__ == "__main__":
    main()
