"""Sampling throughput (and optionally NHDS training time and held-out NLL) of the torch generators.

Random weights (the output bias of END is raised so that patients average 6-7 tokens), blocks
of 1024 patients and NHDS-like caps (15 categories per visit, one visit, 17 tokens). Every
configuration of a model runs once per round, rounds repeat, and the table shows medians; the
ratio is against the baseline measured in the same rounds: the plain loop (fused-SDPA KV cache
with (B, heads, T, dh) layout, masked logits, ``torch.multinomial``, finished rows kept).

Rows: ``torch`` is the first torch sampler (inverse CDF with a torch generator, top-p via
``torch.topk``); ``compiled`` is hiergen's ``sample_logits`` (per-patient counter-based
streams). ``workers x threads``: worker threads each running whole blocks x torch intra-op
threads (2 workers sample two blocks). patients/CPU-s divides by this process's CPU time,
which other load on a shared machine disturbs less than wall time.

    python benchmarks/bench_torch_generators.py [--repeats 5] [--models lstm,d128,d256] [--nhds]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from hiergen_torch.decoding import generate_blocks
from hiergen_torch.models import LSTMLM, Block, TransformerLM, make_decoder

N_TOKENS = 1116 + N_SPECIAL  # NHDS 2010 categories
MAX_LEN, MAX_CODES = 17, 15
MODELS: dict[str, tuple[str, Callable[[], torch.nn.Module]]] = {
    "lstm": ("lstm d=128/2L", lambda: LSTMLM(N_TOKENS, MAX_LEN, 128, 2)),
    "d128": ("transformer d=128/2L", lambda: TransformerLM(N_TOKENS, MAX_LEN, 128, 2, 4)),
    "d256": ("transformer d=256/4L", lambda: TransformerLM(N_TOKENS, MAX_LEN, 256, 4, 4)),
}


class LegacyTransformerDecoder:
    """The first decoder: (B, heads, T, dh) caches and the fused SDPA kernel per step."""

    def __init__(self, model: TransformerLM) -> None:
        self.model = model
        self.caches: list[tuple[Tensor, Tensor]] = []
        self.pos = 0

    def _forward_one(self, x: Tensor) -> Tensor:
        x = x + self.model.pos.weight[self.pos]
        for block, (k_cache, v_cache) in zip(self.model.blocks, self.caches, strict=True):
            assert isinstance(block, Block)
            b, d = x.shape
            h = block.n_heads
            q, k, v = block.qkv(block.ln1(x)).view(b, 3, h, d // h).unbind(1)
            k_cache[:, :, self.pos] = k
            v_cache[:, :, self.pos] = v
            a = F.scaled_dot_product_attention(
                q.unsqueeze(2), k_cache[:, :, : self.pos + 1], v_cache[:, :, : self.pos + 1]
            ).reshape(b, d)
            x = x + block.proj(a)
            x = x + block._mlp(x)
        return self.model.head(x)

    def start(self, sex: Tensor, age: Tensor, max_len: int) -> Tensor:
        m = self.model
        shape = (sex.shape[0], m.n_heads, max_len, m.d_model // m.n_heads)
        self.caches = [(torch.empty(shape), torch.empty(shape)) for _ in m.blocks]
        self.pos = 0
        return self._forward_one(m.prefix(sex, age))

    def step(self, tokens: Tensor) -> Tensor:
        self.pos += 1
        return self._forward_one(self.model.tok(tokens))

    def keep(self, index: Tensor) -> None:
        raise NotImplementedError("the baseline keeps finished rows")


@torch.inference_mode()
def baseline_generate(model: torch.nn.Module, sex: Tensor, age: Tensor,
                      gen: torch.Generator) -> Tensor:
    """The plain loop: mask logits, multinomial, keep finished rows in the batch."""
    dec = (LegacyTransformerDecoder(model) if isinstance(model, TransformerLM)
           else make_decoder(model))
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


def make_runner(model: torch.nn.Module, batch: int, config: dict[str, Any]
                ) -> Callable[[int], tuple[int, float]]:
    """A function seed -> (patients, tokens per patient) for one configuration."""
    caps = torch.full((N_TOKENS,), 3, dtype=torch.int64)
    caps[:N_SPECIAL] = 0
    workers, threads = config["workers"], config["threads"]
    rng = np.random.default_rng(0)
    n = batch * workers
    sex = rng.integers(0, 2, n).astype(np.int64)
    age = (rng.random(n) * 90).astype(np.float32)

    def run(seed: int) -> tuple[int, float]:
        torch.set_num_threads(threads)
        if config["sampler"] == "baseline":
            gen = torch.Generator().manual_seed(seed)
            out = baseline_generate(model, torch.from_numpy(sex), torch.from_numpy(age),
                                    gen).numpy()
        else:
            out = generate_blocks(
                model, sex, age, block_size=batch, workers=workers, seed=seed,
                max_repeats=caps, max_len=MAX_LEN, max_codes=MAX_CODES, max_visits=1,
                sampler=config["sampler"], **config["options"])
        return n, float((out != PAD).sum()) / n

    return run


def configurations() -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = [
        ("baseline", {"sampler": "baseline", "options": {}, "workers": 1, "threads": 1})]
    variants = [("plain", {}), ("top_k=50", {"top_k": 50}), ("top_p=0.95", {"top_p": 0.95})]
    for name, opts in variants:
        rows.append((name, {"sampler": "torch", "options": opts, "workers": 1, "threads": 1}))
    for name, opts in variants:
        for workers in (1, 2):
            rows.append((name, {"sampler": "compiled", "options": opts, "workers": workers,
                                "threads": 1}))
    rows.append(("plain", {"sampler": "compiled", "options": {}, "workers": 1, "threads": 2}))
    return rows


def measure(model: torch.nn.Module, batch: int, repeats: int
            ) -> list[tuple[str, dict[str, Any], float, float, float]]:
    """Per configuration, medians over rounds: patients/s, patients per CPU-second (this
    process's CPU time: robust to other load on the machine) and tokens per patient."""
    configs = configurations()
    runners = [make_runner(model, batch, c) for _, c in configs]
    rates: list[list[float]] = [[] for _ in configs]
    per_cpu: list[list[float]] = [[] for _ in configs]
    tokens = [0.0] * len(configs)
    for r in range(repeats + 1):
        for i, run in enumerate(runners):
            t0, c0 = time.perf_counter(), time.process_time()
            n, tokens[i] = run(r)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r:  # the first round warms up
                rates[i].append(n / dt)
                per_cpu[i].append(n / max(dc, 1e-9))
    return [(name, c, statistics.median(rt), statistics.median(pc), tk)
            for (name, c), rt, pc, tk in zip(configs, rates, per_cpu, tokens, strict=True)]


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
    ap.add_argument("--threads", type=int, default=2, help="threads for --nhds training")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="lstm,d128,d256", help=f"of {','.join(MODELS)}")
    ap.add_argument("--end-bias", type=float, default=2.0)
    ap.add_argument("--nhds", action="store_true", help="also train on the NHDS 80%% split")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, block {args.batch} patients, median of {args.repeats} "
          "rounds")
    print("| model | sampler | truncation | workers x threads | patients/s | x baseline "
          "| patients/CPU-s | x baseline | tokens/patient |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in args.models.split(","):
        label, build = MODELS[key]
        model = build().eval()
        with torch.no_grad():
            model.out_bias[END] = args.end_bias  # type: ignore[operator]
        results = measure(model, args.batch, args.repeats)
        base, base_cpu = results[0][2], results[0][3]
        for name, c, rate, cpu, tok in results:
            sampler = ("mask + multinomial, SDPA cache, rows kept" if c["sampler"] == "baseline"
                       else c["sampler"])
            print(f"| {label} | {sampler} | {name} | {c['workers']} x {c['threads']} "
                  f"| {rate:,.0f} | {rate / base:.2f} | {cpu:,.0f} | {cpu / base_cpu:.2f} "
                  f"| {tok:.1f} |", flush=True)
    if args.nhds:
        print("\n| model (NHDS 2010 80/20) | training | held-out NLL/token |\n|---|---|---|")
        for row in nhds_rows(args.epochs, args.threads):
            print(row, flush=True)


if __name__ == "__main__":
    main()
