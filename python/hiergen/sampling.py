"""Drawing tokens from logits with the compiled core (for Stage-1 sequence models).

:func:`sample_logits` takes a float32 ``(rows, columns)`` logits matrix (a torch CPU tensor's
``.numpy()`` view works without a copy) and draws one column per row with temperature, top-k
and exact top-p, in one compiled pass per row. Row ``r``'s uniform number is number ``step`` of
the counter-based stream ``(seed, streams[r])``: give each patient its own stream id and the
draw depends only on the seed, the patient and the step, whatever the batch, its order or the
thread and process count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hiergen._compiled import compiled_module

__all__ = ["sample_logits"]


def sample_logits(
    logits: npt.ArrayLike,
    *,
    seed: int,
    step: int,
    streams: npt.ArrayLike | None = None,
    floors: npt.ArrayLike | None = None,
    floor_start: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    out: npt.NDArray[np.int32] | None = None,
    threads: int | None = None,
) -> npt.NDArray[np.int32]:
    """One column per row of ``logits`` (int32; ``-1`` where no column is allowed).

    ``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1 switch those off. ``-inf`` (and
    NaN) logits are never drawn. ``floors`` (one int per row) additionally forbids columns
    ``floor_start .. floors[r] - 1`` of row ``r`` (e.g. categories below the last one drawn in
    a canonically ordered visit), without writing ``-inf`` into the logits.
    """
    _sample = compiled_module().sample_logits
    return _sample(logits, seed=seed, step=step, streams=streams, floors=floors,
                   floor_start=floor_start, temperature=temperature, top_k=top_k,
                   top_p=top_p, out=out, threads=threads)
