"""Benchmark of the compiled Stage-2 sampler (issue 2).

Workload: 1,000 categories / about 7,000 codes with Zipf-like code weights; 10M category ids
drawn from a truncated Zipf(1.1). Prints ns/sample (median of several repeats) for the
compiled sampler on 1 and 2 threads, a vectorised numpy alias-method baseline, a
``random.choices`` loop (timed on 1M), the raw RNG and memory-copy floors, and the ratios.

``sample_visits`` (issue 6) is timed on the same ids cut into visits of 1-15 codes (mean
about 7, as NHDS 2010) with 12 strata, and on singleton visits, against ``sample`` with the
same strata per element in the same rounds: the per-visit overhead as a ratio.

    python benchmarks/bench_sampler.py [--n 10000000] [--repeats 7]

``--baseline-core MODULE`` also times ``sample`` of another build of the compiled module (for
example the previous commit's, its ``_core*.so`` in a folder on ``PYTHONPATH``) in the same
rounds and prints the ratios:

    PYTHONPATH=/tmp/old python benchmarks/bench_sampler.py --baseline-core _core
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from hiergen._core import CategoryIndex, _bench_rng

C1 = "compiled, 1 thread, out="
C2 = "compiled, 2 threads, out="
NP1 = "numpy alias, 1 thread"
NP2 = "numpy alias, 2 threads"
RNG1 = "floor: counter RNG, 1 thread"
XO = "floor: xoshiro256++ (sequential)"
COPY = "floor: copy int32 -> int32"
S12 = "sample, 12 strata, 1 thread"
V1 = "sample_visits, visits ~7, 1 thread"
V2 = "sample_visits, visits ~7, 2 threads"
VS = "sample_visits, singleton visits, 1 thread"
B1 = "baseline build, 1 thread, out="
B2 = "baseline build, 2 threads, out="


def make_workload(
    n: int, seed: int = 2010
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Offsets, weights and category ids shaped like the NHDS 2010 hierarchy."""
    rng = np.random.default_rng(seed)
    n_cat = 1000
    # Heavy-tailed category sizes: most categories small, a few with hundreds of codes.
    sizes = np.minimum(369, np.floor(rng.pareto(0.75, n_cat)) + 1).astype(np.int64)
    sizes[0] = 369
    while sizes.sum() > 7000:
        big = np.flatnonzero(sizes > 6)
        sizes[rng.choice(big)] -= 1
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    weights = np.empty(int(offsets[-1]))
    for c in range(n_cat):
        k = int(sizes[c])
        w = 1.0 / np.arange(1, k + 1) ** 1.0
        weights[offsets[c] : offsets[c + 1]] = rng.permutation(w)
    ranks = np.arange(1, n_cat + 1, dtype=np.float64)
    p = ranks**-1.1
    p /= p.sum()
    perm = rng.permutation(n_cat)
    cats = perm[rng.choice(n_cat, size=n, p=p)].astype(np.int32)
    return offsets, weights, cats


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_alias_tables(
    offsets: npt.NDArray[np.int64], weights: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Vose alias tables per category in Python (built once, not timed)."""
    prob = np.ones(weights.size)
    alias = np.arange(weights.size, dtype=np.int64)
    for c in range(offsets.size - 1):
        b, e = int(offsets[c]), int(offsets[c + 1])
        p = weights[b:e] * (e - b) / weights[b:e].sum()
        small = [j for j in range(e - b) if p[j] < 1.0]
        large = [j for j in range(e - b) if p[j] >= 1.0]
        while small and large:
            s, g = small.pop(), large[-1]
            prob[b + s], alias[b + s] = p[s], b + g
            p[g] += p[s] - 1.0
            if p[g] < 1.0:
                small.append(large.pop())
    return prob, alias


def numpy_alias_sample(
    cats: npt.NDArray[np.int32],
    offsets: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.int64],
    prob: npt.NDArray[np.float64],
    alias: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    col = offsets[cats] + (rng.random(cats.size) * sizes[cats]).astype(np.int64)
    return np.where(rng.random(cats.size) < prob[col], col, alias[col])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--n-python", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-core", default=None,
                        help="another build of the compiled module to time in the same rounds")
    args = parser.parse_args()
    n, reps = args.n, args.repeats

    offsets, weights, cats = make_workload(n)
    sizes = np.diff(offsets)
    print(
        f"workload: {sizes.size} categories, {weights.size} codes (largest {sizes.max()}, "
        f"{int((sizes <= 5).sum())} with <= 5 codes); {n:,} ids Zipf(1.1); median of {reps}"
    )
    t0 = time.perf_counter()
    index = CategoryIndex(offsets, weights)
    build_ms = (time.perf_counter() - t0) * 1e3
    rebuild_ms = median_time(lambda: index.with_weights(weights), reps) * 1e3
    # The rebuild target: tables for 10,000 codes (1,000 categories x 10) under 1 ms.
    w10k = np.random.default_rng(0).random(10_000) + 0.01
    index10k = CategoryIndex(np.arange(0, 10_001, 10), w10k)
    rebuild10k_ms = median_time(lambda: index10k.with_weights(w10k), reps) * 1e3
    out = np.empty(n, dtype=np.int32)

    # Visits for sample_visits: lengths 1-15 (mean ~7), 12 strata (one per visit).
    vrng = np.random.default_rng(7)
    lengths = np.minimum(vrng.geometric(1 / 7.3, size=n // 2) , 15)
    ends = np.cumsum(lengths)
    lengths = lengths[: int(np.searchsorted(ends, n)) + 1]
    lengths[-1] -= int(lengths.sum()) - n
    lengths = lengths[lengths > 0]
    visit_offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=visit_offsets[1:])
    visit_strata = vrng.integers(0, 12, lengths.size).astype(np.int32)
    elem_strata = np.repeat(visit_strata, lengths)
    singleton = np.arange(n + 1, dtype=np.int64)
    w12 = weights[None, :] * vrng.uniform(0.5, 1.5, (12, weights.size))
    index12 = CategoryIndex(offsets, w12)

    prob, alias = numpy_alias_tables(offsets, weights)
    rng = np.random.default_rng(1)
    halves = np.array_split(cats, 2)
    rngs = [np.random.default_rng(s) for s in (2, 3)]
    raw = np.empty(n, dtype=np.uint32)
    pool = ThreadPoolExecutor(2)

    def numpy_two() -> None:
        list(
            pool.map(
                lambda a: numpy_alias_sample(a[0], offsets, sizes, prob, alias, a[1]),
                zip(halves, rngs, strict=True),
            )
        )

    methods: dict[str, Callable[[], object]] = {
        C1: lambda: index.sample(cats, seed=1, out=out, threads=1),
        C2: lambda: index.sample(cats, seed=1, out=out, threads=2),
        "compiled, 1 thread, new array": lambda: index.sample(cats, seed=1, threads=1),
        NP1: lambda: numpy_alias_sample(cats, offsets, sizes, prob, alias, rng),
        NP2: numpy_two,
        RNG1: lambda: _bench_rng(raw, 1, "counter", 1),
        "floor: counter RNG, 2 threads": lambda: _bench_rng(raw, 1, "counter", 2),
        "floor: splitmix64 counter, 1 thread": lambda: _bench_rng(raw, 1, "splitmix"),
        XO: lambda: _bench_rng(raw, 1, "xoshiro"),
        COPY: lambda: np.copyto(out, cats),
        S12: lambda: index12.sample(cats, elem_strata, seed=1, out=out, threads=1),
        V1: lambda: index12.sample_visits(cats, visit_offsets, visit_strata, seed=1, out=out,
                                          threads=1),
        V2: lambda: index12.sample_visits(cats, visit_offsets, visit_strata, seed=1, out=out,
                                          threads=2),
        VS: lambda: index12.sample_visits(cats, singleton, elem_strata, seed=1, out=out,
                                          threads=1),
    }
    if args.baseline_core:
        baseline = importlib.import_module(args.baseline_core).CategoryIndex(offsets, weights)
        methods[B1] = lambda: baseline.sample(cats, seed=1, out=out, threads=1)
        methods[B2] = lambda: baseline.sample(cats, seed=1, out=out, threads=2)
    # Interleaved rounds: every round times every method once, so load changes on a shared
    # machine hit all methods alike; ratios are medians of per-round ratios.
    rounds: dict[str, list[float]] = {k: [] for k in methods}
    for fn in methods.values():
        fn()  # warm-up
    for _ in range(reps):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            rounds[name].append((time.perf_counter() - t0) / n * 1e9)
    pool.shutdown()
    ns = {k: statistics.median(v) for k, v in rounds.items()}

    m = min(args.n_python, n)
    codes_of = [list(range(int(offsets[c]), int(offsets[c + 1]))) for c in range(sizes.size)]
    weights_of = [weights[offsets[c] : offsets[c + 1]].tolist() for c in range(sizes.size)]
    cats_list = cats[:m].tolist()
    random.seed(1)

    def python_loop() -> None:
        choices = random.choices
        [choices(codes_of[c], weights_of[c])[0] for c in cats_list]

    ns[f"random.choices loop (on {m:,})"] = median_time(python_loop, 1) / m * 1e9

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rounds[a], rounds[b], strict=True))

    width = max(map(len, ns))
    for name, v in ns.items():
        print(f"  {name:<{width}}  {v:10.2f} ns/sample")
    print(f"  alias tables for {weights.size} codes: build {build_ms:.3f} ms, "
          f"with_weights {rebuild_ms:.3f} ms; with_weights for 10,000 codes "
          f"{rebuild10k_ms:.3f} ms (target < 1)")
    c1, c2 = ns[C1], ns[C2]
    print("ratios (median of per-round ratios):")
    print(f"  numpy 1 thread / compiled 1 thread    {ratio(NP1, C1):7.1f}x  (target >= 10)")
    print(f"  numpy 2 threads / compiled 2 threads  {ratio(NP2, C2):7.1f}x")
    print(f"  compiled 1 thread / counter RNG floor {ratio(C1, RNG1):7.2f}x  (target <= 2.5)")
    print(f"  compiled 1 thread / xoshiro floor     {ratio(C1, XO):7.2f}x")
    print(f"  compiled 1 thread / copy floor        {ratio(C1, COPY):7.2f}x")
    print(f"  1 thread / 2 threads                  {ratio(C1, C2):7.2f}x")
    print(f"  sample_visits (visits ~7) / sample    {ratio(V1, S12):7.2f}x  (same strata)")
    print(f"  sample_visits (singletons) / sample   {ratio(VS, S12):7.2f}x")
    print(f"  sample_visits 1 / 2 threads           {ratio(V1, V2):7.2f}x")
    if args.baseline_core:
        print(f"  baseline build / this build, 1 thread {ratio(B1, C1):6.2f}x")
        print(f"  baseline build / this build, 2 threads{ratio(B2, C2):6.2f}x")
    print(f"targets: 1 thread {c1:.2f} ns (<= 2.5), 2 threads {c2:.2f} ns (<= 1.4)")


if __name__ == "__main__":
    main()
