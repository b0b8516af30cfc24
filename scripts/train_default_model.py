"""Train the default model shipped inside the package (``python/hiergen/default_model``).

Reads NHDS 2010 (public domain, US government work) from ``../shared/data/nhds2010``
relative to the repository root, or from ``--data``; trains the ``markov`` generator in the
shipped configuration (``DEFAULT_MODEL_PARAMS`` of ``benchmarks/bench_generators.py``: codes
held by at least ``--own-code-min-visits`` training visits as categories of their own, 64
visit classes assigned by their most probable class, a chain that backs off through the
split codes' parent categories) and the ``context`` Stage 2 (at most 15,000 context tables);
writes the model directory and prints its size, which must stay within ``--max-mb`` (the
package ships it). With ``--protocol`` (the default) it also trains the same configuration on
the 80% split of the NHDS protocol (``benchmarks/bench_nhds_protocol.py``) and prints the
category and code pair R2, the impossible-age and exact-copy rates on the 20%.

    .venv/bin/python scripts/train_default_model.py
    .venv/bin/python scripts/train_default_model.py --previous --no-protocol   # the model before
    .venv/bin/python scripts/train_default_model.py --order 1 --no-protocol   # the old small one
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


def directory_size(root: Path) -> tuple[int, int]:
    """(bytes in files, bytes on disk as ``du`` counts them) under ``root``."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files)


def protocol_figures(data: Path, generator_params: dict[str, object], weighting: str,
                     seed: int, own_code_min_visits: int,
                     weighting_params: dict[str, object]) -> dict[str, float]:
    """Fit on the protocol's 80% split, score synthetic visits against the 20%."""
    from bench_generators import protocol_metrics, protocol_split

    from hiergen.generators.markov import MarkovGenerator
    from hiergen.hierarchy import Hierarchy, frequent_codes
    from hiergen.loaders import load

    cohort, _ = load(data, format="nhds")
    train, held = protocol_split(cohort)
    own = frequent_codes(train, own_code_min_visits) if own_code_min_visits else []
    hierarchy = Hierarchy.from_codes(cohort.vocab, own_categories=own)
    gen = MarkovGenerator(**generator_params)  # type: ignore[arg-type]
    gen.fit(train, hierarchy, seed=seed)
    return protocol_metrics(gen, hierarchy, train, held, {}, weighting=weighting,
                            weighting_params=weighting_params)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--order", type=int, default=None,
                        help="markov order instead of the shipped configuration: 2 the "
                        "generator's default chain with visit classes, 1 the small one")
    parser.add_argument("--previous", action="store_true",
                        help="the configuration shipped before own-code categories (default "
                        "chain, 64 visit classes drawn from their posterior)")
    parser.add_argument("--n-classes", type=int, default=64,
                        help="visit classes (64 beats the generator's default 32 on NHDS 2010)")
    parser.add_argument("--own-code-min-visits", type=int, default=None,
                        help="codes held by at least this many visits become categories of "
                        "their own (0: none; default: the shipped configuration's)")
    parser.add_argument("--weighting", default="context",
                        help="Stage-2 strategy: context (context tables stored compactly with "
                        "the model), or stratified")
    parser.add_argument("-w", "--weighting-param", dest="wparams", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="weighting parameter (repeatable), e.g. -w min_support=30 "
                        "-w max_tables=20000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-mb", type=float, default=10.0,
                        help="fail when the model directory takes more (MB on disk)")
    parser.add_argument("--protocol", action=argparse.BooleanOptionalAction, default=True,
                        help="also print the NHDS protocol figures of this configuration")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"NHDS 2010 file not found: {args.data}", file=sys.stderr)
        return 1

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_generators import CONTEXT_PARAMS, DEFAULT_MODEL_PARAMS, OWN_CODE_MIN_VISITS

    from hiergen.train import train_from_path

    params: dict[str, object]
    if args.order is not None or args.previous:
        params = {"order": args.order or 2, "n_classes": args.n_classes}
        own = 0 if args.own_code_min_visits is None else args.own_code_min_visits
    else:
        params = {**DEFAULT_MODEL_PARAMS, "n_classes": args.n_classes}
        own = OWN_CODE_MIN_VISITS if args.own_code_min_visits is None else (
            args.own_code_min_visits
        )
    w_params: dict[str, object] = dict(CONTEXT_PARAMS) if args.weighting == "context" else {}
    for pair in args.wparams:
        key, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"--weighting-param: expected KEY=VALUE, got {pair!r}")
        w_params[key] = json.loads(value) if value[:1] in "-0123456789.[{tfn" else value
    t0 = time.perf_counter()
    model, _ = train_from_path(
        args.data,
        args.out,
        format="nhds",
        generator="markov",
        weighting=args.weighting,
        weighting_params=w_params,
        generator_params=params,
        seed=args.seed,
        overwrite=True,
        own_code_min_visits=own,
    )
    took = time.perf_counter() - t0
    for p in sorted(p for p in args.out.rglob("*") if p.is_file()):
        print(f"{p.relative_to(args.out)}: {p.stat().st_size / 1e6:.2f} MB")
    size, disk = directory_size(args.out)
    print(f"total {size / 1e6:.2f} MB in files, {disk / 2**20:.2f} MiB on disk "
          f"(limit {args.max_mb:g}); trained in {took:.1f} s")
    print("training summary:", json.dumps(model.summary, indent=1))
    if args.protocol:
        t0 = time.perf_counter()
        m = protocol_figures(args.data, params, args.weighting, args.seed, own, w_params)
        print(f"NHDS protocol (80/20 split, Stage 2 {args.weighting}): category pair R2 "
              f"{m['category_pair_r2']:.4f}, code pair R2 {m['code_pair_r2']:.4f}, "
              f"impossible-age visits {100 * m['age_impossible_rate']:.3f}%, "
              f"sex-impossible {100 * m['sex_impossible_rate']:.2f}%, exact copies "
              f"{100 * m['exact_copy_rate']:.1f}% ({time.perf_counter() - t0:.0f} s)")
    if disk > args.max_mb * 2**20:
        print(f"the model directory takes {disk / 2**20:.2f} MiB, over --max-mb {args.max_mb:g}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
