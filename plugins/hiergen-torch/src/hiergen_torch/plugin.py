"""Registers the ``lstm`` and ``transformer`` generators through the ``hiergen_generators`` hook."""

from __future__ import annotations

import hiergen
from hiergen.plugins import GeneratorSpec


@hiergen.hookimpl
def hiergen_generators() -> list[GeneratorSpec]:
    # Import paths, not classes: listing plugins must not import torch (seconds per process).
    return [
        GeneratorSpec("lstm", "hiergen_torch.generator:LSTMGenerator",
                      "LSTM over category tokens (torch)"),
        GeneratorSpec("transformer", "hiergen_torch.generator:TransformerGenerator",
                      "causal transformer with a KV cache over category tokens (torch)"),
    ]
