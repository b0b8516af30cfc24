"""The NHDS 2010 protocol of BENCHMARKS.md: ceiling, floor, Stage-2 oracle and generators.

Split the 151,551 discharges 80/20 by record (seed 0); train on the 80%; generate as many
synthetic visits as the 20% holds, with the 20%'s ages and sexes; score against the 20%.
Every row is printed beside the ceiling (a training sample the size of the held-out set vs
held-out) and the floor (independent codes at their marginal rates, held-out visit sizes),
with the share of the floor-to-ceiling gap closed on code and category pair R2.

    python benchmarks/bench_nhds_protocol.py                       # everything available
    python benchmarks/bench_nhds_protocol.py --sizes 1000 10000 --generators markov
    python benchmarks/bench_nhds_protocol.py --baselines-only -o results.md

Needs ../shared/data/nhds2010 (or --data); the oracle and generator rows need the compiled
sampler (hiergen._core).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.evaluate import evaluate, independent_codes, resample_split

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "nhds2010" / "NHDS10.PU.txt.bz2"
METRICS = ["unigram", "pairs", "strata", "lengths", "plausibility", "diversity", "privacy"]
COLUMNS: list[tuple[str, str, Callable[[float], str]]] = [
    ("code_unigram_r2", "code uni R2", lambda x: f"{x:.3f}"),
    ("code_pair_r2", "code pair R2", lambda x: f"{x:.3f}"),
    ("category_unigram_r2", "cat uni R2", lambda x: f"{x:.3f}"),
    ("category_pair_r2", "cat pair R2", lambda x: f"{x:.3f}"),
    ("code_strata_r2", "code strata R2", lambda x: f"{x:.3f}"),
    ("codes_per_visit_tv", "len TV", lambda x: f"{x:.3f}"),
    ("sex_impossible_rate", "sex-impossible", lambda x: f"{100 * x:.2f}%"),
    ("age_impossible_rate", "age-impossible", lambda x: f"{100 * x:.2f}%"),
    ("distinct_codes", "distinct codes", lambda x: f"{x:,.0f}"),
    ("exact_copy_rate", "exact copies", lambda x: f"{100 * x:.1f}%"),
    ("dcr_mean", "DCR", lambda x: f"{x:.3f}"),
    ("mia_auc", "MIA AUC", lambda x: f"{x:.3f}"),
]
GAP_KEYS = ("code_pair_r2", "category_pair_r2")
#: Constructor options per generator name: the torch generators (plugin hiergen-torch) train
#: d=128 / 2 layers within a time budget (``--torch-seconds``) instead of up to 30 epochs.
TORCH_OPTIONS: dict[str, Any] = {"d_model": 128, "n_layers": 2, "batch_size": 256,
                                 "dropout": 0.0, "max_seconds": 240.0, "threads": 1,
                                 "progress": False}
GENERATOR_OPTIONS: dict[str, dict[str, Any]] = {"lstm": TORCH_OPTIONS, "transformer": TORCH_OPTIONS}


@dataclass
class Row:
    name: str
    values: dict[str, float]
    train_s: float = math.nan
    gen_rate: float = math.nan
    notes: dict[str, Any] = field(default_factory=dict)


def load_nhds(path: Path) -> Cohort:
    from hiergen.loaders import load

    cohort, _ = load(path, format="nhds")
    return cohort


def split(cohort: Cohort, seed: int = 0) -> tuple[Cohort, Cohort]:
    perm = np.random.default_rng(seed).permutation(cohort.n_visits)
    n_train = int(0.8 * cohort.n_visits)
    return cohort.select_visits(perm[:n_train]), cohort.select_visits(perm[n_train:])


def score(heldout: Cohort, synthetic: Cohort, train: Cohort, sample: int) -> dict[str, float]:
    report = evaluate(heldout, synthetic, train=train, metrics=METRICS, baselines=False,
                      plots=False, privacy_sample=sample)
    return dict(report.values["synthetic"])


# --- Stage 2 alone: real category multisets, codes drawn by the compiled sampler ------------
def oracle_rows(sample: Cohort, heldout: Cohort, rest: Cohort, train: Cohort,
                privacy_sample: int) -> list[Row]:
    from hiergen import CategoryIndex
    from hiergen.demographics import stratum
    from hiergen.hierarchy import Hierarchy
    from hiergen.plugins.registry import registry

    weightings = registry("weightings")
    # the whole vocabulary: the sample's codes all come from the training split (so have weight)
    hierarchy = Hierarchy.from_codes(sample.vocab)
    categories = sample.category_ids_in(hierarchy)
    rows = []
    for name, label in (("frequency", "frequency in the category"),
                        ("stratified", "frequency per sex x age band")):
        if name not in weightings:
            continue
        spec = weightings[name]
        weights = spec.build(hierarchy, train, **dict(spec.defaults)).weights
        index = CategoryIndex(hierarchy.offsets, weights, zero_weight="uniform")
        strata = stratum(sample.sex, sample.age).astype(np.int32) if weights.shape[0] > 1 else None
        t0 = time.perf_counter()
        codes = index.sample_visits(categories, sample.visit_offsets, strata, seed=1)
        rate = sample.n_visits / (time.perf_counter() - t0)
        drawn = Cohort(sample.patient_ids, sample.patient_offsets, sample.visit_offsets,
                       np.asarray(codes, dtype=np.int32), hierarchy.codes, sample.sex, sample.age)
        rows.append(Row(f"oracle Stage 1 + {label}", score(heldout, drawn, rest, privacy_sample),
                        gen_rate=rate))
    return rows


# --- generators from the plugin registry -------------------------------------------------
#: Pseudo generator name: the configuration of the shipped default model
#: (``scripts/train_default_model.py``): markov with its NHDS parameters, frequent codes as
#: categories of their own, context-aware Stage 2.
SHIPPED = "shipped"


def fit_shipped(train: Cohort, seed: int = 0) -> Any:
    from bench_generators import CONTEXT_PARAMS, DEFAULT_MODEL_PARAMS, OWN_CODE_MIN_VISITS

    from hiergen.train import train as train_model

    return train_model(train, None, generator="markov", weighting="context",
                       generator_params=dict(DEFAULT_MODEL_PARAMS),
                       weighting_params=dict(CONTEXT_PARAMS), seed=seed,
                       own_code_min_visits=OWN_CODE_MIN_VISITS)


def fit_model(generator: str, kind: str, train: Cohort, seed: int = 0) -> Any:
    if generator == SHIPPED:
        return fit_shipped(train, seed)
    from hiergen.generation.demographics import DemographicsDistribution
    from hiergen.hierarchy import Hierarchy
    from hiergen.model import HiergenModel
    from hiergen.plugins.registry import registry

    spec = registry("generators")[generator]
    w_spec = registry("weightings")["frequency"]
    # the whole vocabulary (generators require every code of the cohort's vocab); codes the
    # training subset lacks get weight 0
    codes = train.vocab
    hierarchy = Hierarchy.from_codes(codes) if kind == "hierarchical" else Hierarchy.flat(codes)
    stage1 = spec.load()(**GENERATOR_OPTIONS.get(generator, {}))
    stage1.fit(train, hierarchy, seed=seed)
    weights = w_spec.build(hierarchy, train, **dict(w_spec.defaults)).weights
    demographics = DemographicsDistribution.from_arrays(train.age, train.sex)
    return HiergenModel(stage1, generator, hierarchy, weights, demographics=demographics)


def generator_rows(names: list[str], sizes: list[int | None], train: Cohort, heldout: Cohort,
                   privacy_sample: int, emit: Callable[[Row], None],
                   kinds: tuple[str, ...] = ("hierarchical", "flat")) -> list[Row]:
    rows = []
    for size in sizes:
        if size is None or size >= train.n_visits:
            subset, label = train, f"all {train.n_visits:,}"
        else:
            pick = np.random.default_rng(size).choice(train.n_visits, size, replace=False)
            subset, label = train.select_visits(pick), f"{size:,}"
        for name in names:
            for kind in (("hierarchical",) if name == SHIPPED else kinds):
                t0 = time.perf_counter()
                try:
                    model = fit_model(name, kind, subset)
                except Exception as exc:  # report and go on: one broken plugin is one row
                    print(f"# {name} {kind} {label}: fit failed: {exc!r}", file=sys.stderr)
                    continue
                train_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                batch = model.generate(age=heldout.age, sex=heldout.sex, seed=1)
                gen_s = time.perf_counter() - t0
                synthetic = batch.to_cohort()
                rows.append(Row(f"{name} {kind}, train {label}",
                                score(heldout, synthetic, subset, privacy_sample),
                                train_s=train_s, gen_rate=synthetic.n_visits / gen_s))
                emit(rows[-1])
    return rows


def header() -> list[str]:
    head = ["", *(c[1] for c in COLUMNS), *(f"gap closed {k.split('_')[0]} pair" for k in GAP_KEYS),
            "train s", "visits/s"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def line(row: Row, ceiling: Row, floor: Row) -> str:
    cells = [row.name]
    for key, _, f in COLUMNS:
        v = row.values.get(key, math.nan)
        cells.append(f(v) if math.isfinite(v) else "-")
    for key in GAP_KEYS:
        v, c, fl = (r.values.get(key, math.nan) for r in (row, ceiling, floor))
        gap = (v - fl) / (c - fl) if abs(c - fl) > 1e-9 else math.nan
        cells.append(f"{100 * gap:.0f}%" if math.isfinite(gap) else "-")
    cells.append(f"{row.train_s:.1f}" if math.isfinite(row.train_s) else "-")
    cells.append(f"{row.gen_rate:,.0f}" if math.isfinite(row.gen_rate) else "-")
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", nargs="*", default=["1000", "10000", "all"])
    ap.add_argument("--generators", nargs="*", default=None,
                    help=f"generator names (default: every registered one), or {SHIPPED!r}: "
                    "the shipped default model's configuration")
    ap.add_argument("--privacy-sample", type=int, default=1000)
    ap.add_argument("--torch-seconds", type=float, default=TORCH_OPTIONS["max_seconds"],
                    help="training time budget of each torch generator (0: early stopping only)")
    ap.add_argument("--kinds", nargs="*", default=["hierarchical", "flat"],
                    choices=["hierarchical", "flat"])
    ap.add_argument("--baselines-only", action="store_true")
    ap.add_argument("--time-report", action="store_true",
                    help="also time one full `evaluate` report from cold caches")
    ap.add_argument("-o", "--output", type=Path, help="also write the table here (Markdown)")
    args = ap.parse_args(argv)
    TORCH_OPTIONS["max_seconds"] = args.torch_seconds
    if not args.data.exists():
        print(f"NHDS file {args.data} is absent; nothing to benchmark", file=sys.stderr)
        return 0
    t0 = time.perf_counter()
    cohort = load_nhds(args.data)
    train, heldout = split(cohort)
    sample, rest = resample_split(train, heldout.n_visits, seed=0)
    print(f"# NHDS 2010: {cohort.n_visits:,} visits; train {train.n_visits:,}, held-out "
          f"{heldout.n_visits:,}; ceiling sample {sample.n_visits:,} (loaded in "
          f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    ceiling = Row("ceiling: training sample vs held-out",
                  score(heldout, sample, rest, args.privacy_sample))
    floor_cohort = independent_codes(train, heldout, seed=1)
    floor = Row("floor: independent codes at marginal rates",
                score(heldout, floor_cohort, train, args.privacy_sample))
    held = Row("held-out visits themselves (privacy: against all training visits)", {
        "exact_copy_rate": floor.values["exact_copy_rate_heldout"],
        "dcr_mean": floor.values["dcr_mean_heldout"],
        "sex_impossible_rate": floor.values["sex_impossible_rate_real"],
        "age_impossible_rate": floor.values["age_impossible_rate_real"],
        "distinct_codes": floor.values["distinct_codes_real"],
    })
    lines = header()
    print("\n".join(lines), flush=True)

    def emit(row: Row) -> None:  # print each row as soon as it is measured
        lines.append(line(row, ceiling, floor))
        print(lines[-1], flush=True)

    for row in (ceiling, held, floor):
        emit(row)
    if not args.baselines_only:
        try:
            import hiergen._core  # noqa: F401
        except ImportError:
            print("# hiergen._core is not built: oracle and generator rows skipped",
                  file=sys.stderr)
        else:
            for row in oracle_rows(sample, heldout, rest, train, args.privacy_sample):
                emit(row)
            from hiergen.plugins.registry import registry

            names = args.generators or sorted(registry("generators"))
            sizes = [None if s == "all" else int(s) for s in args.sizes]
            generator_rows(names, sizes, train, heldout, args.privacy_sample, emit,
                           tuple(args.kinds))
    if args.time_report:
        # the budget: the whole report (ceiling and floor rows, plots) in under a minute
        from hiergen.evaluate import _visits

        _visits._views.clear()  # cold caches: every array derived again
        t1 = time.perf_counter()
        evaluate(heldout, floor_cohort, train=train, privacy_sample=args.privacy_sample)
        took = time.perf_counter() - t1
        print(f"# full report, {floor_cohort.n_visits:,} synthetic vs {heldout.n_visits:,} "
              f"held-out visits, {train.n_visits:,} training visits, ceiling + floor rows: "
              f"{took:.1f} s ({took / 60:.2f} of the 60 s budget)", file=sys.stderr)
    text = "\n".join(lines)
    print(f"# total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
