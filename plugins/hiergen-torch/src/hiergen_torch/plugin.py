"""Registers the ``lstm`` and ``transformer`` generators through the ``hiergen_generators`` hook."""

from __future__ import annotations

import hiergen
from hiergen.plugins import GeneratorSpec


@hiergen.hookimpl
def hiergen_generators() -> list[GeneratorSpec]:
    from hiergen_torch.generator import LSTMGenerator, TransformerGenerator

    return [
        GeneratorSpec("lstm", LSTMGenerator, "LSTM over category tokens (torch)"),
        GeneratorSpec("transformer", TransformerGenerator,
                      "causal transformer with a KV cache over category tokens (torch)"),
    ]
