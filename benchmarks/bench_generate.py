"""End-to-end throughput of ``hiergen generate``: patients/s at 1 and more workers, the share
of time in Stage 2 and in writing, and the peak RSS.

Each configuration runs in a fresh subprocess (so that its peak RSS is its own); the
1-worker run of each format is the baseline the others are compared with.

    .venv/bin/python benchmarks/bench_generate.py                 # default model, 1M, 1+2 workers
    .venv/bin/python benchmarks/bench_generate.py --n 10000000 --workers 2
    .venv/bin/python benchmarks/bench_generate.py --model my_model/ --formats meds,parquet
    # two models in the same run (e.g. context-aware vs context-free Stage 2):
    .venv/bin/python benchmarks/bench_generate.py --model default,stratified_model/

Targets (issue 6): Stage 2 under 5% of the end-to-end time; markov at least 100,000
patients/s to MEDS on a 2-core machine; peak RSS under 1.5 GB for 10M patients.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from hiergen.generation.job import run_job
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
s = run_job(args["out"], n=args["n"], model=args["model"], seed=1, fmt=args["fmt"],
            workers=args["workers"], shard_size=args["shard_size"])
print(json.dumps({
    "wall": time.perf_counter() - t0, "job_seconds": s.seconds, "patients": s.n_patients,
    "rows": s.n_rows, "bytes": s.bytes,
    "stage1": s.timings.demographics_stage1, "stage2": s.timings.stage2,
    "write": s.timings.write,
    "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def run_one(model: str | None, n: int, fmt: str, workers: int, shard_size: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="hiergen-bench-")) / "out"
    args = {"out": str(out), "n": n, "model": model, "fmt": fmt, "workers": workers,
            "shard_size": shard_size}
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)],
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["process_seconds"] = elapsed
        return result
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="model directory, or several comma-separated ('default' is the "
                        "shipped model, also used when omitted)")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--formats", default="meds", help="comma-separated writers")
    parser.add_argument("--shard-size", type=int, default=50_000)
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    models = (args.model or "default").split(",")
    print(f"n={args.n:,} shard_size={args.shard_size:,} models={', '.join(models)}")
    print("stage shares are of the summed step times (Stage 1 incl. demographics, Stage 2,")
    print("writing); busy = summed step time / (wall x W): above 1 where writing overlaps")
    print(f"{'model':10} {'format':8} {'W':>2} {'patients/s':>11} {'vs first':>8} "
          f"{'stage1':>7} {'stage2':>7} {'write':>7} {'busy':>6} {'RSS main':>9} {'RSS wkr':>8} "
          f"{'MB out':>7}")
    for fmt in args.formats.split(","):
        base = None
        for model, w in ((m, w) for w in workers for m in models):
            r = run_one(None if model == "default" else model, args.n, fmt, w, args.shard_size)
            rate = r["patients"] / r["job_seconds"]
            base = base or rate
            steps = [r[k] for k in ("stage1", "stage2", "write")]
            shares = [s / sum(steps) for s in steps]
            busy = sum(steps) / (r["job_seconds"] * w)
            print(
                f"{Path(model).name[:10]:10} {fmt:8} {w:>2} {rate:>11,.0f} {rate / base:>7.2f}x "
                + " ".join(f"{s:>6.1%}" for s in shares)
                + f" {busy:>6.2f} {r['rss_self_mb']:>7,.0f}MB {r['rss_workers_mb']:>6,.0f}MB"
                + f" {r['bytes'] / 1e6:>7,.1f}"
            )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"largest process over all runs: {usage:,.0f} MB RSS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
