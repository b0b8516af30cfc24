"""The decoding constraints as a training mask.

Generation (:mod:`hiergen_torch.decoding`) only lets a patient continue with tokens that keep the
sequence valid: categories in canonical (non-decreasing) order within a visit, a category at
most as often as it has codes, at most ``max_codes`` categories per visit and ``max_visits``
visits, no marker at the start of a visit, never ``PAD``. Training with the same constraints
makes the model a distribution over valid sequences only: without them, the probability a
not fully trained model gives to excluded tokens is renormalised at sampling time onto the
allowed ones, mostly onto the markers, and visits come out too short.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END


class VisitState:
    """Where each of ``n`` sequences stands against the constraints: its last token, how
    often that token repeats at the end, the categories of its current visit and the visits
    it has closed. The compiled decoding loop and :func:`allowed_tokens` both step it, so
    generation and training apply one set of rules."""

    def __init__(self, n: int) -> None:
        self.last = np.full(n, VISIT_END, dtype=np.int64)
        self.rep = np.zeros(n, dtype=np.int64)
        self.vlen = np.zeros(n, dtype=np.int64)
        self.nvis = np.zeros(n, dtype=np.int64)

    def allowed(
        self, caps: npt.NDArray[np.int64], *, max_codes: int, max_visits: int, n_tokens: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """The lowest allowed category token per row (``n_tokens``: none), and whether
        ``VISIT_END`` and whether ``END`` are excluded."""
        at_start = self.last < N_SPECIAL
        lower = np.where(at_start, N_SPECIAL, self.last + (self.rep >= caps[self.last]))
        lower[self.vlen >= max_codes] = n_tokens
        return lower, at_start | (self.nvis + 1 >= max_visits), at_start

    def advance(self, tok: npt.NDArray[np.int64]) -> None:
        """Append token ``tok[i]`` to row ``i``."""
        self.rep = np.where(tok == self.last, self.rep + 1, 1)
        self.vlen = np.where(tok < N_SPECIAL, 0, self.vlen + 1)
        self.nvis = self.nvis + (tok == VISIT_END)
        self.last = tok

    def take(self, rows: npt.NDArray[np.integer]) -> None:
        """Keep only ``rows`` (in that order)."""
        self.last, self.rep, self.vlen, self.nvis = (
            a[rows] for a in (self.last, self.rep, self.vlen, self.nvis))


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
