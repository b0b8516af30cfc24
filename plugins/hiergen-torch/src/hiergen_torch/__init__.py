"""hiergen-torch: the ``lstm`` and ``transformer`` Stage-1 generators of hiergen."""

from __future__ import annotations

from hiergen_torch.generator import LSTMGenerator, TorchGenerator, TransformerGenerator

__all__ = ["LSTMGenerator", "TorchGenerator", "TransformerGenerator"]
