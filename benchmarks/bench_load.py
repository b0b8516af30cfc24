"""NHDS load time and peak memory, sparsity-table time, and the memory of a 10M-row cohort.

Run: ``python benchmarks/bench_load.py [--nhds PATH] [--rows 10000000] [--repeat 3]``.
Prints medians; the baseline is reading and decompressing the raw file in the same run (the
floor any loader pays), so the loader's cost shows as a ratio against it.
"""

from __future__ import annotations

import argparse
import bz2
import resource
import statistics
import time
from pathlib import Path

import numpy as np
from hiergen.cohort import Cohort
from hiergen.loaders import load
from hiergen.stats import sparsity

DEFAULT_NHDS = Path(__file__).resolve().parents[1].parent / "shared/data/nhds2010/NHDS10.PU.txt.bz2"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def synthetic_cohort(n_rows: int, seed: int = 0) -> Cohort:
    """A cohort of ``n_rows`` diagnosis rows: ~7.3 codes per visit, ~1.3 visits per patient."""
    rng = np.random.default_rng(seed)
    n_visits = n_rows // 7
    lengths = np.full(n_visits, n_rows // n_visits, dtype=np.int64)
    lengths[: n_rows - int(lengths.sum())] += 1
    vo = np.zeros(n_visits + 1, dtype=np.int64)
    np.cumsum(lengths, out=vo[1:])
    per_patient = rng.integers(1, 3, size=n_visits)
    po = np.concatenate([[0], np.cumsum(per_patient)])
    po = po[po <= n_visits]
    if po[-1] != n_visits:
        po = np.append(po, n_visits)
    n_pat = po.size - 1
    vocab = tuple(f"{i // 10:03d}.{i % 10}" for i in range(8000))
    # distinct codes within a visit: offsets inside a visit are increasing
    base = rng.integers(0, 8000 - 20, size=n_visits)
    codes = (np.repeat(base, lengths) + (np.arange(n_rows) - np.repeat(vo[:-1], lengths))).astype(
        np.int32
    )
    return Cohort(
        patient_ids=np.arange(n_pat, dtype=np.int64), patient_offsets=po.astype(np.int64),
        visit_offsets=vo, codes=codes, vocab=vocab,
        sex=rng.integers(0, 2, n_visits).astype(np.int8),
        age=rng.uniform(0, 90, n_visits).astype(np.float32),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nhds", type=Path, default=DEFAULT_NHDS)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rss0 = peak_rss_mb()
    print(f"peak RSS after imports: {rss0:.0f} MB")
    if args.nhds.exists():
        t_raw = median_time(lambda: bz2.decompress(args.nhds.read_bytes()), args.repeat)
        holder: dict[str, Cohort] = {}

        def run() -> None:
            holder["c"], _ = load(args.nhds, format="nhds")

        t_load = median_time(run, args.repeat)
        c = holder["c"]
        rss1 = peak_rss_mb()
        t_stats = median_time(lambda: sparsity(c), args.repeat)
        print(f"NHDS: {c.n_visits:,} visits, {c.n_rows:,} rows, cohort {c.nbytes / 1e6:.1f} MB")
        print(f"  baseline bz2 decompress: {t_raw:.2f} s")
        print(f"  load (median of {args.repeat}): {t_load:.2f} s = {t_load / t_raw:.2f}x "
              f"the decompress baseline; {c.n_rows / t_load / 1e6:.2f} M rows/s")
        print(f"  peak RSS after loading: {rss1:.0f} MB (+{rss1 - rss0:.0f} MB over imports)")
        print(f"  sparsity table: {t_stats:.2f} s")
    else:
        print(f"NHDS file {args.nhds} absent: skipped")
    t = time.perf_counter()
    big = synthetic_cohort(args.rows)
    t_build = time.perf_counter() - t
    print(f"synthetic cohort: {big.n_rows:,} rows, {big.n_visits:,} visits, "
          f"{big.n_patients:,} patients: {big.nbytes / 1e6:.0f} MB of arrays "
          f"({big.nbytes / big.n_rows:.1f} bytes/row), built in {t_build:.2f} s; "
          f"peak RSS now {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
