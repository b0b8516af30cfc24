"""Stage-1 generators on the NHDS 2010 protocol: training time, held-out NLL, throughput.

Protocol (see ../shared/BENCHMARKS.md): NHDS 2010 split 80/20 by record (one visit per
record) with seed 0; train on the 80%; score the per-token negative log-likelihood of the 20%
(tokens = category tokens + one end marker per visit); generate patients with the held-out
ages and sexes (tiled to ``--n-sample``) and time it; score the category pair R2 of as many
synthetic visits as the 20% holds against the 20%, next to its ceiling (the training visits)
and floor (categories drawn independently at their marginal rates with held-out visit sizes).

Each generator also gets the checkpoint size, the size of the whole model directory, and the
figures of ``bench_nhds_protocol.py`` (same split): category and code pair R2
(``hiergen.evaluate``; Stage 2 ``--weighting``, by default ``context`` with at most 15,000
tables as shipped), the rate of newborn/pregnancy codes at impossible ages and the exact-copy
rate against the training visits (held-out visits: 15.3%). A generator listed in
``OWN_CODES`` is trained on a hierarchy where frequent codes are categories of their own; its
held-out NLL is over those finer tokens, so it does not compare with the other rows'. The
"gap closed" column is the share of the floor-to-ceiling gap of this script's own category
pair R2 (floor: that model; ceiling: the training visits). Throughput ratios are against the
order-1 markov model (the default shipped before checkpoint format 3), measured in the same
run.

Run: ``PYTHONPATH=python .venv/bin/python benchmarks/bench_generators.py``.
To add a generator (e.g. the torch plugin's lstm/transformer), append to ``GENERATORS``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.hierarchy import Hierarchy, frequent_codes

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nhds2010"


#: The shipped default model's Stage 1 (``scripts/train_default_model.py``): codes held by at
#: least :data:`OWN_CODE_MIN_VISITS` training visits are categories of their own, kept next to
#: the category they came from in the canonical order; the chain conditions on the first and
#: the two previous categories, then backs off through the split codes' parent categories;
#: each training visit gets its most probable visit class.
OWN_CODE_MIN_VISITS = 1000
DEFAULT_MODEL_PARAMS: dict[str, Any] = {
    "n_classes": 64,
    "class_assignment": "map",
    "group_parents": True,
    "context": "stratum.cls.first.prev2.prev1,stratum.cls.first.prev1,"
    "stratum.cls.pfirst.pprev1,stratum.cls.len.pprev1,stratum.cls.pprev1,stratum.len.pprev1,"
    "stratum.pprev1,stratum.cls,stratum",
}
#: Parameters of the ``context`` Stage 2 as shipped (a bound on the model's size).
CONTEXT_PARAMS: dict[str, Any] = {"max_tables": 15000}
#: Labels of the generators trained on a hierarchy with own-code categories (the value: the
#: ``min_visits`` of :func:`hiergen.hierarchy.frequent_codes`).
OWN_CODES: dict[str, int] = {}


def _markov(**kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        from hiergen.generators.markov import MarkovGenerator

        return MarkovGenerator(**kwargs)

    return make


#: (label, factory). Torch generators go here, e.g.
#: ("transformer d=128 L=2", lambda: TransformerGenerator(d_model=128, n_layers=2, ...)).
GENERATORS: list[tuple[str, Callable[[], Any]]] = [
    ("markov, own-code categories (the shipped default model)",
     _markov(**DEFAULT_MODEL_PARAMS)),
    ("markov (64 visit classes: the default model before own-code categories)",
     _markov(n_classes=64)),
    ("markov (default: 32 visit classes)", _markov()),
    ("markov (order 1: the shipped default before format 3)", _markov(order=1)),
    # the chain of the first version, minus its age-pooled back-off level, as a reference
    ("markov (order-2 chain, given order)", _markov(
        context="stratum.prev2.prev1,stratum.prev1,stratum", token_order="given",
        smoothing=4.0, n_classes=1,
    )),
]


OWN_CODES[GENERATORS[0][0]] = OWN_CODE_MIN_VISITS

#: The row the throughput ratios are taken against.
BASELINE = GENERATORS[3][0]


# --- torch generators (plugin hiergen-torch), when it is installed ------------------------
#: Options of every torch generator; ``--torch-seconds`` sets the training time budget.
TORCH_OPTIONS: dict[str, Any] = {
    "max_seconds": 240.0, "batch_size": 256, "dropout": 0.0, "threads": 1, "progress": False,
}


def _torch(cls_name: str, **kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import hiergen_torch

        return getattr(hiergen_torch, cls_name)(**{**TORCH_OPTIONS, **kwargs})

    return make


if importlib.util.find_spec("hiergen_torch") is not None:
    GENERATORS += [
        ("lstm d=128/2L (hiergen-torch)", _torch("LSTMGenerator", d_model=128, n_layers=2)),
        ("transformer d=128/2L (hiergen-torch)",
         _torch("TransformerGenerator", d_model=128, n_layers=2, n_heads=4)),
    ]


# --- the floor model (baseline) ------------------------------------------------------------
class IndependentBaseline:
    """Visit lengths from their empirical distribution, categories i.i.d. at marginal rates
    (no conditioning); the floor of the fidelity metrics and the speed reference."""

    def fit(self, cohort: Cohort, hierarchy: Hierarchy) -> None:
        cats = cohort.category_ids_in(hierarchy)
        self.n_categories = hierarchy.n_categories
        self.cat_cdf = np.cumsum(np.bincount(cats, minlength=hierarchy.n_categories))
        self.len_cdf = np.cumsum(np.bincount(cohort.visit_lengths))
        self.p_cat = np.diff(self.cat_cdf, prepend=0) / self.cat_cdf[-1]
        self.p_len = np.diff(self.len_cdf, prepend=0) / self.len_cdf[-1]

    def sample_visits(self, n: int, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        rng = np.random.default_rng(seed)
        lengths = np.searchsorted(self.len_cdf, rng.random(n) * self.len_cdf[-1], side="right")
        total = int(lengths.sum())
        cats = np.searchsorted(self.cat_cdf, rng.random(total) * self.cat_cdf[-1], side="right")
        vo = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=vo[1:])
        return vo, cats

    def nll(self, cohort: Cohort, hierarchy: Hierarchy) -> float:
        eps = 1e-6
        cats = cohort.category_ids_in(hierarchy)
        lengths = cohort.visit_lengths
        inside = lengths < self.p_len.size
        p_len = np.where(inside, self.p_len[np.minimum(lengths, self.p_len.size - 1)], 0.0)
        total = -np.log((1 - eps) * self.p_cat[cats] + eps / self.n_categories).sum()
        total += -np.log((1 - eps) * p_len + eps * np.exp2(-(lengths + 1.0))).sum()
        return float(total / (cats.size + lengths.size))


# --- fidelity: category pair R2 --------------------------------------------------------
def prevalences(
    visit_offsets: npt.NDArray[np.int64], cats: npt.NDArray[Any], n_categories: int
) -> tuple[npt.NDArray[np.float64], dict[int, float]]:
    """Per-visit prevalence of each category and of each unordered pair of distinct ones."""
    lengths = np.diff(visit_offsets)
    n = lengths.size
    width = int(lengths.max())
    mat = np.full((n, width), -1, dtype=np.int64)
    mat[np.arange(width) < lengths[:, None]] = cats
    mat.sort(axis=1)
    dup = np.zeros_like(mat, dtype=bool)
    dup[:, 1:] = mat[:, 1:] == mat[:, :-1]
    mat[dup] = -1  # keep distinct categories only
    present = mat[mat >= 0]
    uni = np.bincount(present, minlength=n_categories) / n
    c = np.int64(n_categories)
    keys = []
    for i in range(width):
        for j in range(i + 1, width):
            a, b = mat[:, i], mat[:, j]
            ok = (a >= 0) & (b >= 0)
            keys.append(np.minimum(a, b)[ok] * c + np.maximum(a, b)[ok])
    pk, pc = np.unique(np.concatenate(keys), return_counts=True)
    return uni, dict(zip(pk.tolist(), (pc / n).tolist(), strict=True))


def r2(truth: npt.NDArray[np.float64], pred: npt.NDArray[np.float64]) -> float:
    return float(1 - ((truth - pred) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())


def pair_r2(real: dict[int, float], fake: dict[int, float]) -> float:
    keys = sorted(set(real) | set(fake))
    truth = np.array([real.get(k, 0.0) for k in keys])
    return r2(truth, np.array([fake.get(k, 0.0) for k in keys]))


# --- the run ---------------------------------------------------------------------------
def load_nhds(folder: Path) -> Cohort:
    from hiergen.loaders.nhds import load_nhds as load

    return load(folder / "NHDS10.PU.txt.bz2")[0]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def protocol_split(cohort: Cohort, seed: int = 0) -> tuple[Cohort, Cohort]:
    """The 80/20 split by record of ``bench_nhds_protocol.py`` (so the figures agree)."""
    perm = np.random.default_rng(seed).permutation(cohort.n_visits)
    n_train = int(0.8 * cohort.n_visits)
    return cohort.select_visits(perm[:n_train]), cohort.select_visits(perm[n_train:])


def checkpoint_mb(gen: Any) -> float:
    """Size of the saved checkpoint directory (MB, 10^6 bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        gen.save(tmp)
        return sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6


def protocol_metrics(
    gen: Any, hierarchy: Hierarchy, train: Cohort, held: Cohort, real_pairs: dict[int, float],
    *, weighting: str = "frequency", base: Hierarchy | None = None,
    weighting_params: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Category and code pair R2, the impossible-age rate and the exact-copy rate of as many
    synthetic visits as the held-out set holds (its ages and sexes; Stage 2 ``weighting``,
    with its context tables where it has them), as in ``bench_nhds_protocol.py``;
    ``own_category_pair_r2`` by this script's :func:`pair_r2` over the categories of ``base``
    (default ``hierarchy``) when ``real_pairs`` is given."""
    from hiergen.context import as_stored
    from hiergen.evaluate import evaluate
    from hiergen.evaluate.privacy import copy_rate
    from hiergen.model import HiergenModel
    from hiergen.weighting import build_weights

    params = dict(weighting_params or {})
    if weighting == "context" and weighting_params is None:
        params.update(CONTEXT_PARAMS)
    built = build_weights(weighting, hierarchy, train, params)
    tables = getattr(built, "tables", None)
    model = HiergenModel(gen, "markov", hierarchy, built.weights,
                         context=None if tables is None else as_stored(tables),
                         sampler=getattr(built, "sampler", None))
    synthetic = model.generate(age=held.age, sex=held.sex, seed=1).to_cohort()
    report = evaluate(held, synthetic, train=train, metrics=["pairs", "plausibility"],
                      baselines=False, plots=False)
    out = dict(report.values["synthetic"])
    out["exact_copy_rate"] = copy_rate(synthetic, train)
    out["model_mb"] = model_mb(model)
    if real_pairs:
        cat_h = base or hierarchy
        cats = synthetic.category_ids_in(cat_h)
        out["own_category_pair_r2"] = pair_r2(
            real_pairs, prevalences(synthetic.visit_offsets, cats, cat_h.n_categories)[1]
        )
    return out


def model_mb(model: Any) -> float:
    """Size of a saved model directory (Stage 1 and Stage 2; MB, 10^6 bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model")
        return sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of NHDS10.PU.txt.bz2")
    ap.add_argument("--n-sample", type=int, default=200_000, help="patients per timed sample")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    ap.add_argument("--only", nargs="*", help="labels (substrings) of the generators to run")
    ap.add_argument("--weighting", default="context",
                    help="Stage 2 of the fidelity columns (default: context, as shipped)")
    ap.add_argument("--torch-seconds", type=float, default=TORCH_OPTIONS["max_seconds"],
                    help="training time budget of each torch generator (0: early stopping only)")
    args = ap.parse_args(argv)
    TORCH_OPTIONS["max_seconds"] = args.torch_seconds
    if not (args.data / "NHDS10.PU.txt.bz2").exists():
        print(f"NHDS 2010 not found under {args.data}; nothing to measure", file=sys.stderr)
        return 1

    real = load_nhds(args.data)
    train, held = protocol_split(real)
    # the whole vocabulary, as the protocol does (codes only in the held-out set get weight 0)
    hierarchy = Hierarchy.from_codes(real.vocab)
    c = hierarchy.n_categories
    print(
        f"NHDS 2010: {train.n_visits:,} training / {held.n_visits:,} held-out visits, "
        f"{c:,} categories; sampling {args.n_sample:,} patients, median of {args.repeats}"
    )
    reps = -(-args.n_sample // held.n_patients)
    first = held.patient_offsets[:-1]
    age = np.tile(held.age[first], reps)[: args.n_sample]
    sex = np.tile(held.sex[first], reps)[: args.n_sample]
    real_pairs = prevalences(held.visit_offsets, held.category_ids_in(hierarchy), c)[1]
    train_pairs = prevalences(train.visit_offsets, train.category_ids_in(hierarchy), c)[1]
    ceiling = pair_r2(real_pairs, train_pairs)

    base = IndependentBaseline()
    base_fit, _ = timed(lambda: base.fit(train, hierarchy), args.repeats)
    base_nll = base.nll(held, hierarchy)
    base_t, _ = timed(lambda: base.sample_visits(args.n_sample, 0), args.repeats)
    vo, cats = base.sample_visits(held.n_visits, 1)
    floor = pair_r2(real_pairs, prevalences(vo, cats, c)[1])
    rows: list[tuple[str, float, float, float, float, dict[str, float]]] = [
        ("floor: independent categories", base_fit, base_nll, math.nan, args.n_sample / base_t,
         {"own_category_pair_r2": floor}),
    ]
    chosen = [
        (label, make) for label, make in GENERATORS
        if not args.only or any(o in label for o in args.only)
    ]
    for label, make in chosen:
        gen = make()
        own = OWN_CODES.get(label, 0)
        h = (
            Hierarchy.from_codes(real.vocab, own_categories=frequent_codes(train, own))
            if own else hierarchy
        )

        def fit(gen: Any = gen, h: Hierarchy = h) -> None:
            gen.fit(train, h, seed=0)

        def sample(gen: Any = gen) -> Any:
            return gen.sample(age, sex, seed=0)

        fit_t, _ = timed(fit, args.repeats)
        total, n_tokens = gen.log_likelihood(held)
        sample_t, _ = timed(sample, args.repeats)
        metrics = protocol_metrics(gen, h, train, held, real_pairs, weighting=args.weighting,
                                   base=hierarchy)
        rows.append((label, fit_t, total / n_tokens, checkpoint_mb(gen),
                     args.n_sample / sample_t, metrics))
        print(f"# {label}: done", file=sys.stderr, flush=True)

    print()
    print("| generator | train s | held-out NLL/token | checkpoint MB | model MB "
          "| Stage-1 patients/s | x baseline | category pair R2 | gap closed | code pair R2 "
          "| age-impossible | exact copies |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    base_rate = next((r[4] for r in rows if r[0] == BASELINE), rows[0][4])
    for label, fit_t, nll, mb, rate, m in rows:
        score = m.get("category_pair_r2", m["own_category_pair_r2"])
        gap = (m["own_category_pair_r2"] - floor) / (ceiling - floor)
        code = m.get("code_pair_r2", math.nan)
        age_bad = m.get("age_impossible_rate", math.nan)
        copies = m.get("exact_copy_rate", math.nan)
        print(
            f"| {label} | {fit_t:.2f} | {nll:.4f} | {_fmt(mb, '.2f')} "
            f"| {_fmt(m.get('model_mb', math.nan), '.2f')} | {rate:,.0f} "
            f"| {rate / base_rate:.2f} | {score:.3f} | {gap:.0%} | {_fmt(code, '.3f')} "
            f"| {_fmt(100 * age_bad, '.2f')}{'%' if math.isfinite(age_bad) else ''} "
            f"| {_fmt(100 * copies, '.1f')}{'%' if math.isfinite(copies) else ''} |"
        )
    print(f"| ceiling: training visits vs held-out | | | | | | | {ceiling:.3f} | 100% | | | |")
    print(f"\nbaseline of the throughput ratios: {BASELINE}")
    return 0


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if math.isfinite(x) else "-"


if __name__ == "__main__":
    raise SystemExit(main())
