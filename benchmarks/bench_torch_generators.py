"""Sampling throughput (and optionally NHDS training time and held-out NLL) of the torch generators.

Random weights (the output bias of END set so that patients average about 9 tokens, as NHDS
visits do: 7.3 categories, a visit end and END), blocks of 1024 patients and NHDS-like caps
(15 categories per visit, one visit, 17 tokens). Every
configuration of a model runs once per round, rounds repeat, and the table shows medians; the
ratio is against the baseline measured in the same rounds: the plain loop (fused-SDPA KV cache
with (B, heads, T, dh) layout, masked logits, ``torch.multinomial``, finished rows kept).

Rows: ``torch`` is the first torch sampler (inverse CDF with a torch generator, top-p via
``torch.topk``); ``compiled`` is hiergen's ``sample_logits`` (per-patient counter-based
streams); ``int8`` rows sample from the dynamic int8 copy of the network
(``quantize="int8"``), and ``--nhds`` prints the held-out NLL of both networks.
``workers x threads``: worker threads each running whole blocks x torch intra-op threads
(2 workers sample two blocks). patients/CPU-s divides by this process's CPU time,
which other load on a shared machine disturbs less than wall time.

    python benchmarks/bench_torch_generators.py [--repeats 5] [--models lstm,d128,d256] [--nhds]
    python benchmarks/bench_torch_generators.py --train-speed 5000 --repeats 3

``--train-speed N`` measures training instead: tokens/s of one epoch over N NHDS training
patients with the first training loop (random batches padded to their longest sequence, the
output layer on every position) against the current one (batches of similar lengths, the
output layer only where there is a target), in the same rounds.
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
from hiergen_torch.quantization import quantize_int8

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
    if config.get("quantize") == "int8":
        model = quantize_int8(model)

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
    for workers in (1, 2):
        rows.append(("plain, int8", {"sampler": "compiled", "options": {}, "workers": workers,
                                     "threads": 1, "quantize": "int8"}))
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


def load_split() -> tuple[Any, Any, Any] | None:
    """The NHDS 2010 80/20 split of ``bench_nhds_protocol.py`` and the hierarchy of the whole
    vocabulary, or None when the data is absent."""
    from hiergen import Hierarchy
    from hiergen.loaders import load

    path = Path(__file__).resolve().parents[2] / "shared/data/nhds2010/NHDS10.PU.txt.bz2"
    if not path.exists():
        return None
    cohort, _ = load(path, format="nhds")
    perm = np.random.default_rng(0).permutation(cohort.n_visits)
    n_train = int(0.8 * cohort.n_visits)
    train, test = cohort.select_visits(perm[:n_train]), cohort.select_visits(perm[n_train:])
    return train, test, Hierarchy.from_codes(cohort.vocab)


def legacy_epoch(model: torch.nn.Module, seqs: Any, order: np.ndarray, optim: Any,
                 batch_size: int) -> None:
    """The first training loop: random batches padded to their longest sequence, the output
    layer on every position (padding included), a sync per step."""
    for start in range(0, order.size, batch_size):
        idx = order[start:start + batch_size]
        tokens = torch.from_numpy(seqs.padded(idx))
        sex = torch.from_numpy(seqs.sex[idx].astype(np.int64))
        age = torch.from_numpy(seqs.age[idx])
        logits = model(sex, age, tokens[:, :-1])
        n = int((tokens != PAD).sum())
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1),
                               ignore_index=PAD, reduction="sum")
        optim.zero_grad(set_to_none=True)
        (loss / max(n, 1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        float(loss.detach())


def train_speed(n_patients: int, repeats: int) -> list[str]:
    """Training tokens/s of the first loop (2 intra-op threads: torch's default here) and of
    the current one (length-bucketed batches, output layer on targets only; 1 and 2 threads),
    on ``n_patients`` NHDS training patients, dropout 0.1, d=128 / 2 layers, batch 256."""
    from hiergen.generators.sequences import build_vocab, encode
    from hiergen_torch.generator import (
        LSTMGenerator,
        TransformerGenerator,
        _length_batches,
        _Tensors,
    )

    split = load_split()
    if split is None:
        return ["(training speed skipped: NHDS 2010 absent)"]
    train, _, hierarchy = split
    vocab = build_vocab(train, hierarchy)
    seqs = encode(train, hierarchy, vocab)
    data = _Tensors.of(seqs, torch.device("cpu"))
    order = np.random.default_rng(1).permutation(seqs.n_patients)[:n_patients]
    n_tokens = int(seqs.lengths[order].sum())
    rows = []
    for cls in (LSTMGenerator, TransformerGenerator):
        gen = cls(progress=False, batch_size=256)
        variants: list[tuple[str, int, Callable[[torch.nn.Module, Any], None]]] = [
            ("first loop (random batches, full output layer)", 2,
             lambda m, o: legacy_epoch(m, seqs, order, o, 256)),
        ]

        def current(m: Any, o: Any, g: Any = gen) -> None:
            batches = _length_batches(data.lengths, order, 256, np.random.default_rng(0))
            g._run_epoch(m, data, batches, o, 0, float("inf"))

        for threads in (1, 2):
            variants.append(("length-bucketed, output layer on targets", threads, current))
        rates: list[list[float]] = [[] for _ in variants]
        cpu_rates: list[list[float]] = [[] for _ in variants]
        for _ in range(repeats):
            for i, (_, threads, run) in enumerate(variants):
                torch.manual_seed(0)
                torch.set_num_threads(threads)
                model = gen._build_model(vocab.n_tokens, int(seqs.lengths.max()) + 2).train()
                optim = torch.optim.AdamW(model.parameters(), lr=2e-3)
                t0, c0 = time.perf_counter(), time.process_time()
                run(model, optim)
                rates[i].append(n_tokens / (time.perf_counter() - t0))
                cpu_rates[i].append(n_tokens / max(time.process_time() - c0, 1e-9))
        base, base_cpu = statistics.median(rates[0]), statistics.median(cpu_rates[0])
        for (label, threads, _), rt, cr in zip(variants, rates, cpu_rates, strict=True):
            r, c = statistics.median(rt), statistics.median(cr)
            rows.append(f"| {cls.name} | {label} | {threads} | {r:,.0f} | {r / base:.2f} "
                        f"| {c:,.0f} | {c / base_cpu:.2f} |")
    return rows


def nhds_rows(seconds: float, threads: int) -> list[str]:
    """Train each torch generator on the NHDS 80% split within ``seconds``; held-out NLL per
    token (category tokens + one marker per visit, as markov's ``log_likelihood``)."""
    from hiergen_torch import LSTMGenerator, TransformerGenerator

    split = load_split()
    if split is None:
        return ["(NHDS skipped: NHDS 2010 absent)"]
    train, test, hierarchy = split
    rows = []
    for label, cls in [("lstm d=128/2L", LSTMGenerator),
                       ("transformer d=128/2L", TransformerGenerator)]:
        g = cls(progress=False, threads=threads, batch_size=256, dropout=0.0, d_model=128,
                n_layers=2, max_seconds=seconds)
        t0 = time.perf_counter()
        g.fit(train, hierarchy, seed=0)
        fit_s = time.perf_counter() - t0
        total, n = g.log_likelihood(test)
        g.config.quantize = "int8"
        total8, n8 = g.log_likelihood(test)
        g.config.quantize = "none"
        epochs = g.history[-1]["epoch"]
        rows.append(f"| {label} | {fit_s:.0f} s ({epochs:.2f} epochs) | {total / n:.4f} "
                    f"| {total8 / n8:.4f} | {g.n_unknown_rows(test)} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2, help="threads for --nhds training")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="lstm,d128,d256", help=f"of {','.join(MODELS)}")
    ap.add_argument("--end-bias", type=float, default=-0.5,
                    help="output bias of END: -0.5 gives about 9 tokens per patient, the NHDS "
                    "average and the issue's reference condition")
    ap.add_argument("--nhds", action="store_true", help="also train on the NHDS 80%% split")
    ap.add_argument("--seconds", type=float, default=240.0,
                    help="training time budget per model for --nhds")
    ap.add_argument("--train-speed", type=int, default=0, metavar="N",
                    help="only measure training tokens/s on N NHDS patients (first loop vs now)")
    args = ap.parse_args()
    if args.train_speed:
        print(f"torch {torch.__version__}; one epoch over {args.train_speed:,} NHDS training "
              f"patients, median of {args.repeats}")
        print("| model | training loop | threads | tokens/s | x first | tokens/CPU-s | x first |")
        print("|---|---|---|---|---|---|---|")
        for row in train_speed(args.train_speed, args.repeats):
            print(row, flush=True)
        return
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
        print("\n| model (NHDS 2010 80/20) | training | held-out NLL/token "
              "| the same, int8 network (quantize='int8') "
              "| held-out rows of unseen categories (left out) |\n|---|---|---|---|---|")
        for row in nhds_rows(args.seconds, args.threads):
            print(row, flush=True)


if __name__ == "__main__":
    main()
