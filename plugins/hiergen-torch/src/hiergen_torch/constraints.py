"""The decoding constraints: one implementation (:class:`VisitState`, on numpy arrays or torch
tensors) for both samplers of :mod:`hiergen_torch.decoding` and the training mask.

Generation (:mod:`hiergen_torch.decoding`) only lets a patient continue with tokens that keep the
sequence valid: categories in canonical (non-decreasing) order within a visit, a category at
most as often as it has codes, at most ``max_codes`` categories per visit and ``max_visits``
visits, no marker at the start of a visit, never ``PAD``. Training with the same constraints
makes the model a distribution over valid sequences only: without them, the probability a
not fully trained model gives to excluded tokens is renormalised at sampling time onto the
allowed ones, mostly onto the markers, and visits come out too short.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END

#: The array kinds the rules run on: numpy arrays (CPU bookkeeping, cheaper than torch
#: operations on small arrays) or torch tensors on any device.
Array = TypeVar("Array", npt.NDArray[Any], Tensor)


class _Namespace(Generic[Array]):
    """The few functions the rules need that numpy and torch spell differently."""

    def full(self, n: int, value: int) -> Array:
        """An int64 vector of ``n`` times ``value``."""
        raise NotImplementedError

    def where(self, cond: Array, x: Array | int, y: Array | int) -> Array:
        """``x`` where ``cond`` holds, else ``y``."""
        raise NotImplementedError


class _NumpyNamespace(_Namespace[npt.NDArray[Any]]):
    def full(self, n: int, value: int) -> npt.NDArray[Any]:
        return np.full(n, value, dtype=np.int64)

    def where(self, cond: npt.NDArray[Any], x: npt.NDArray[Any] | int,
              y: npt.NDArray[Any] | int) -> npt.NDArray[Any]:
        return np.where(cond, x, y)


class _TorchNamespace(_Namespace[Tensor]):
    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)

    def full(self, n: int, value: int) -> Tensor:
        return torch.full((n,), value, dtype=torch.int64, device=self.device)

    def where(self, cond: Tensor, x: Tensor | int, y: Tensor | int) -> Tensor:
        return torch.where(cond, x, y)


_NUMPY = _NumpyNamespace()


class VisitState(Generic[Array]):
    """Where each of ``n`` sequences stands against the constraints: its last token, how
    often that token repeats at the end, the categories of its current visit and the visits
    it has closed. Every decoding loop and :func:`allowed_tokens` step it, so generation
    (either sampler) and training apply one set of rules.

    ``VisitState(n)`` keeps its state in numpy arrays; ``VisitState(n, device=d)`` in torch
    tensors on device ``d``. The rules below are written once, for both.
    """

    @overload
    def __init__(self: VisitState[npt.NDArray[Any]], n: int, *, device: None = None) -> None:
        ...

    @overload
    def __init__(self: VisitState[Tensor], n: int, *, device: torch.device | str) -> None:
        ...

    def __init__(self, n: int, *, device: torch.device | str | None = None) -> None:
        xp = _NUMPY if device is None else _TorchNamespace(device)
        self._xp: _Namespace[Array] = cast(_Namespace[Array], xp)
        self.last: Array = self._xp.full(n, VISIT_END)
        self.rep: Array = self._xp.full(n, 0)
        self.vlen: Array = self._xp.full(n, 0)
        self.nvis: Array = self._xp.full(n, 0)

    def allowed(
        self, caps: Array, *, max_codes: int, max_visits: int, n_tokens: int
    ) -> tuple[Array, Array, Array]:
        """The lowest allowed category token per row (int64; ``n_tokens``: none), and
        whether ``VISIT_END`` and whether ``END`` are excluded (bool). ``caps``: int64, the
        most times each token may repeat in a visit, on the state's device."""
        where = self._xp.where
        at_start = self.last < N_SPECIAL
        lower = where(at_start, N_SPECIAL, self.last + (self.rep >= caps[self.last]))
        lower = where(self.vlen >= max_codes, n_tokens, lower)
        return lower, at_start | (self.nvis + 1 >= max_visits), at_start

    def advance(self, tok: Array) -> None:
        """Append token ``tok[i]`` (int64) to row ``i``."""
        where = self._xp.where
        self.rep = where(tok == self.last, self.rep + 1, 1)
        self.vlen = where(tok < N_SPECIAL, 0, self.vlen + 1)
        self.nvis = self.nvis + (tok == VISIT_END)
        self.last = tok

    def take(self, rows: Array) -> None:
        """Keep only ``rows`` (integer indices, in that order)."""
        self.last, self.rep, self.vlen, self.nvis = (
            self.last[rows], self.rep[rows], self.vlen[rows], self.nvis[rows])


def allowed_tokens(
    tokens: npt.NDArray[np.integer], caps: npt.NDArray[np.integer], *, max_codes: int,
    max_visits: int, n_tokens: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """For every position ``t`` of the padded sequences ``tokens`` ``(P, T)``, what the
    decoder allows as token ``t`` given tokens ``0 .. t-1``: the lowest allowed category
    token (``n_tokens``: none), whether ``VISIT_END`` and whether ``END`` are excluded."""
    tok = np.asarray(tokens, dtype=np.int64)
    n, width = tok.shape
    caps64 = np.asarray(caps, dtype=np.int64)
    lower = np.empty((n, width), dtype=np.int32)
    no_visit_end = np.empty((n, width), dtype=bool)
    no_end = np.empty((n, width), dtype=bool)
    state = VisitState(n)
    for t in range(width):
        lower[:, t], no_visit_end[:, t], no_end[:, t] = state.allowed(
            caps64, max_codes=max_codes, max_visits=max_visits, n_tokens=n_tokens)
        state.advance(tok[:, t])
    return lower, no_visit_end, no_end


def mask_logits(
    logits: torch.Tensor, target: torch.Tensor, lower: torch.Tensor,
    no_visit_end: torch.Tensor, no_end: torch.Tensor,
) -> torch.Tensor:
    """``logits`` ``(N, V)`` with the excluded tokens at ``-inf``. The target token itself is
    never excluded (held-out data may break a training-set limit such as ``max_codes``;
    its likelihood then stays finite)."""
    ids = torch.arange(logits.shape[1], device=logits.device)
    excluded = (ids >= N_SPECIAL) & (ids < lower.unsqueeze(1))
    excluded[:, PAD] = True
    excluded[:, VISIT_END] |= no_visit_end
    excluded[:, END] |= no_end
    excluded[torch.arange(target.shape[0], device=logits.device), target] = False
    return logits.masked_fill(excluded, float("-inf"))
