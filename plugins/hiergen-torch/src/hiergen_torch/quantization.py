"""Int8 copies of a trained network for sampling on CPU (``quantize="int8"``).

Dynamic quantization: the weights of every ``nn.Linear`` (and ``nn.LSTM``) are stored as int8
with one scale per tensor, and each batch of activations is quantized on the fly, so the
matrix products run on int8 kernels (fbgemm on x86). The tied output layer (a functional
linear over the token embedding) and the attention arithmetic stay in float32. The copy
samples from a slightly different distribution than the float32 network: measure it
(``bench_torch_generators.py --nhds`` prints the held-out NLL of both).
"""

from __future__ import annotations

import copy
import warnings
from typing import TypeVar

import torch
from torch import nn

QUANTIZE_CHOICES: tuple[str, ...] = ("none", "int8")

M = TypeVar("M", bound=nn.Module)


def check_quantize(value: object, device: torch.device) -> None:
    """Raise ``ValueError`` naming ``quantize`` for an unknown value or a non-CPU device."""
    if value not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize: expected one of {', '.join(QUANTIZE_CHOICES)}, "
                         f"got {value!r}")
    if value != "none" and device.type != "cpu":
        raise ValueError(f"quantize: {value!r} runs on CPU only (torch's dynamic "
                         f"quantization), but the device is {device}; use quantize='none'")


def quantize_int8(model: M) -> M:
    """An int8 copy of ``model`` for inference (the original is left as it is)."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the torch build
        raise RuntimeError(
            f"quantize='int8' needs torch.ao.quantization.quantize_dynamic, which torch "
            f"{torch.__version__} does not have; use quantize='none'") from exc
    source = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        # torch marks its eager-mode quantization deprecated (in favour of the separate
        # torchao package) but ships and runs it; the warnings would repeat per model.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = quantize_dynamic(source, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    return quantized
