"""Train the default model shipped inside the package (``python/hiergen/default_model``).

Reads NHDS 2010 (public domain, US government work) from ``../shared/data/nhds2010``
relative to the repository root, or from ``--data``; trains the ``markov`` generator and
the ``stratified`` Stage-2 weights; writes the model directory and prints its size.

    .venv/bin/python scripts/train_default_model.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "nhds2010" / "NHDS10.PU.txt.bz2"
DEFAULT_OUT = REPO / "python" / "hiergen" / "default_model"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--order", type=int, default=1, help="markov order (1 keeps it small)")
    parser.add_argument("--weighting", default="stratified")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"NHDS 2010 file not found: {args.data}", file=sys.stderr)
        return 1

    from hiergen.train import train_from_path

    t0 = time.perf_counter()
    model, report = train_from_path(
        args.data,
        args.out,
        format="nhds",
        generator="markov",
        weighting=args.weighting,
        generator_params={"order": args.order},
        seed=args.seed,
        overwrite=True,
    )
    files = sorted(p for p in args.out.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for p in files:
        print(f"{p.relative_to(args.out)}: {p.stat().st_size / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB, trained in {time.perf_counter() - t0:.1f} s")
    print(json.dumps(model.summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
