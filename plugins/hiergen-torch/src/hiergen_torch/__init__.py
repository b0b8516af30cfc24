"""hiergen-torch: the ``lstm`` and ``transformer`` Stage-1 generators of hiergen.

The classes are imported on first use, so that discovering the plugin does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LSTMGenerator", "TorchGenerator", "TransformerGenerator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hiergen_torch import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'hiergen_torch' has no attribute {name!r}")
