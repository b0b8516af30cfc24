"""Where a sampling step's time goes (transformer, compiled sampler, one thread).

Runs the benchmark's random-weight models under ``torch.profiler`` (ops grouped by input
shape) and times the compiled sampler and the Python/numpy bookkeeping around it, then prints
each part's share of the whole:

    python benchmarks/profile_torch_sampling.py [--models d128,d256] [--top-p 1.0]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import torch
from bench_torch_generators import END, MODELS, make_runner
from torch.profiler import ProfilerActivity, profile

import hiergen_torch.decoding as decoding
from hiergen_torch.models import TransformerLM


def classify(name: str, shapes: list[Any], d: int, n_tokens: int) -> str:
    """Name the part of the step an operator belongs to."""
    if name == "aten::addmm":
        out = shapes[2][1] if len(shapes) > 2 and len(shapes[2]) == 2 else 0
        k = shapes[1][1] if len(shapes) > 1 and len(shapes[1]) == 2 else 0
        if out == n_tokens:
            return "logits (output layer)"
        if out == 4 * d or k == 4 * d:
            return "MLP matmuls"
        return "attention projections (qkv, out)"
    if name in ("aten::gelu",):
        return "MLP gelu"
    if name in ("aten::mul", "aten::sum", "aten::_softmax", "aten::softmax"):
        return "attention scores/mix (mul, sum, softmax)"
    if name in ("aten::copy_", "aten::index_select"):
        return "KV cache writes and compaction"
    if name == "aten::native_layer_norm":
        return "layer norms"
    return "other torch ops"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="d128,d256")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--top-p", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sampler_time = [0.0]
    inner = decoding.compiled_sample_logits

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            sampler_time[0] += time.perf_counter() - t0

    decoding.compiled_sample_logits = timed
    for key in args.models.split(","):
        label, build = MODELS[key]
        model = build().eval()
        with torch.no_grad():
            model.out_bias[END] = 2.0  # type: ignore[operator]
        options = {"top_p": args.top_p} if args.top_p < 1 else {}
        run = make_runner(model, args.batch, {"sampler": "compiled", "options": options,
                                              "workers": 1, "threads": 1})
        run(0)
        sampler_time[0] = 0.0
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            t0 = time.perf_counter()
            for seed in range(3):
                run(seed)
            wall = time.perf_counter() - t0
        parts: dict[str, float] = defaultdict(float)
        assert isinstance(model, TransformerLM)
        d, n_tokens = model.d_model, model.n_tokens
        for ev in prof.key_averages(group_by_input_shape=True):
            if ev.key.startswith("aten::") and ev.self_cpu_time_total > 0:
                parts[classify(ev.key, list(ev.input_shapes), d, n_tokens)] += (
                    ev.self_cpu_time_total / 1e6)
        torch_total = sum(parts.values())
        parts["compiled sampler (sample_logits)"] = sampler_time[0]
        parts["Python/numpy bookkeeping (and profiler overhead)"] = max(
            0.0, wall - torch_total - sampler_time[0])
        print(f"\n{label}, batch {args.batch}, top_p {args.top_p}: {wall:.2f} s for 3 batches")
        print("| part of the step | share |\n|---|---|")
        for name, sec in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {100 * sec / wall:.1f}% |")


if __name__ == "__main__":
    main()
