"""Throughput (and optionally NHDS training time and held-out NLL) of the torch generators.

Sampling throughput uses random weights (the output bias of END is raised so that patients
average about 9 tokens, like NHDS 2010), batches of 1024 and NHDS-like caps (15 categories per
visit, one visit, 17 tokens). A baseline measured in the same run (same model and KV cache;
masked logits, ``torch.multinomial``, finished rows kept in the batch) gives the ratio.

    python benchmarks/bench_torch_generators.py [--threads 2] [--nhds] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from hiergen_torch.decoding import generate
from hiergen_torch.models import LSTMLM, TransformerLM, make_decoder

N_TOKENS = 1116 + N_SPECIAL  # NHDS 2010 categories
MAX_LEN, MAX_CODES = 17, 15
MODELS = {
    "lstm d=128/2L": lambda: LSTMLM(N_TOKENS, MAX_LEN, 128, 2),
    "transformer d=128/2L": lambda: TransformerLM(N_TOKENS, MAX_LEN, 128, 2, 4),
    "transformer d=256/4L": lambda: TransformerLM(N_TOKENS, MAX_LEN, 256, 4, 4),
}


@torch.inference_mode()
def baseline_generate(model: torch.nn.Module, sex: torch.Tensor, age: torch.Tensor,
                      gen: torch.Generator) -> torch.Tensor:
    """The plain loop: mask logits, multinomial, keep finished rows in the batch."""
    dec = make_decoder(model)
    n = sex.shape[0]
    out = torch.full((n, MAX_LEN), PAD, dtype=torch.int64)
    done = torch.zeros(n, dtype=torch.bool)
    last = torch.full((n,), VISIT_END)
    vlen = torch.zeros(n, dtype=torch.int64)
    cols = torch.arange(N_TOKENS)
    logits = dec.start(sex, age, MAX_LEN)
    for t in range(MAX_LEN):
        at_start = last < N_SPECIAL
        low = torch.where(at_start, N_SPECIAL, last + 1).masked_fill(vlen >= MAX_CODES, N_TOKENS)
        forbid = (cols >= N_SPECIAL) & (cols < low[:, None])
        forbid[:, PAD] = True
        forbid[:, VISIT_END] = True
        forbid[:, END] = at_start
        if t == MAX_LEN - 1:
            forbid[:] = True
            forbid[:, END] = False
        probs = torch.softmax(logits.masked_fill(forbid, float("-inf")), -1)
        tok = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        tok = torch.where(done, PAD, tok)
        out[:, t] = tok
        vlen = torch.where(tok < N_SPECIAL, 0, vlen + 1)
        last = tok
        done |= tok == END
        if bool(done.all()):
            break
        logits = dec.step(tok)
    return out


def throughput(model: torch.nn.Module, batch: int, repeats: int, *, plain: bool,
               **sampling: Any) -> tuple[float, float]:
    """Median patients/s and tokens per patient."""
    caps = torch.full((N_TOKENS,), 3, dtype=torch.int64)
    caps[:N_SPECIAL] = 0
    gen = torch.Generator().manual_seed(0)
    sex = torch.randint(0, 2, (batch,), generator=gen)
    age = torch.rand(batch, generator=gen) * 90
    rates, tokens = [], 0.0
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        if plain:
            out = baseline_generate(model, sex, age, gen)
        else:
            out = generate(make_decoder(model), sex, age, max_repeats=caps, max_len=MAX_LEN,
                           max_codes=MAX_CODES, max_visits=1, generator=gen,
                           **sampling)
        dt = time.perf_counter() - t0
        if r:  # the first run warms up
            rates.append(batch / dt)
        tokens = float((out != PAD).sum()) / batch
    return statistics.median(rates), tokens


def nhds_rows(epochs: int, threads: int) -> list[str]:
    from hiergen import Hierarchy
    from hiergen.loaders import load
    from hiergen_torch import LSTMGenerator, TransformerGenerator

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    path = shared / "nhds2010" / "NHDS10.PU.txt.bz2"
    if not path.exists():
        return [f"(NHDS skipped: {path} absent)"]
    cohort, _ = load(path, format="nhds")
    train, test = cohort.split(0.2, seed=0)
    hierarchy = Hierarchy.from_codes(cohort.vocab)
    rows = []
    for label, cls, opts in [
        ("lstm d=128/2L", LSTMGenerator, {"d_model": 128, "n_layers": 2}),
        ("transformer d=128/2L", TransformerGenerator, {"d_model": 128, "n_layers": 2}),
    ]:
        g = cls(progress=False, threads=threads, epochs=epochs, batch_size=512,
                d_model=opts["d_model"], n_layers=opts["n_layers"])
        t0 = time.perf_counter()
        g.fit(train, hierarchy, seed=0)
        fit_s = time.perf_counter() - t0
        nll = g.nll(test)
        rows.append(f"| {label} | {fit_s:.0f} s ({len(g.history)} epochs) | {nll:.3f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--end-bias", type=float, default=2.0)
    ap.add_argument("--nhds", action="store_true", help="also train on the NHDS 80%% split")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    print("| model | sampler | patients/s | tokens/patient | x baseline |")
    print("|---|---|---|---|---|")
    for label, build in MODELS.items():
        model = build().eval()
        with torch.no_grad():
            model.out_bias[END] = args.end_bias  # type: ignore[operator]
        base, base_tok = throughput(model, args.batch, args.repeats, plain=True)
        print(f"| {label} | baseline (mask + multinomial) | {base:,.0f} | {base_tok:.1f} | 1.00 |")
        variants: list[tuple[str, dict[str, Any]]] = [
            ("plain", {}), ("top_p=0.95", {"top_p": 0.95}), ("top_k=50", {"top_k": 50})]
        for name, opts in variants:
            rate, tok = throughput(model, args.batch, args.repeats, plain=False,
                                   **opts)
            print(f"| {label} | {name} | {rate:,.0f} | {tok:.1f} | {rate / base:.2f} |",
                  flush=True)
    if args.nhds:
        print("\n| model (NHDS 2010 80/20) | training | held-out NLL/token |\n|---|---|---|")
        for row in nhds_rows(args.epochs, args.threads):
            print(row, flush=True)


if __name__ == "__main__":
    main()
