"""One set of decoding rules: the numpy and the torch VisitState agree step by step, and both
samplers' output obeys the rules, per-category caps included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from hiergen_torch.constraints import VisitState, allowed_tokens
from hiergen_torch.decoding import generate
from hiergen_torch.models import TransformerLM, make_decoder

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
N_TOKENS = N_SPECIAL + 4
MAX_CODES, MAX_VISITS = 3, 2


def _random_tokens(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Token sequences that hit every rule: few categories (repeats reach the caps), markers
    and PAD anywhere (also at visit starts), long visits (past ``MAX_CODES``), many visits."""
    special = rng.integers(0, N_SPECIAL, (n, width))
    category = N_SPECIAL + rng.integers(0, N_TOKENS - N_SPECIAL, (n, width))
    return np.where(rng.random((n, width)) < 0.25, special, category).astype(np.int64)


def _step_both(tokens: np.ndarray, caps: np.ndarray, device: str,
               takes: dict[int, np.ndarray] | None = None) -> dict[str, int]:
    """Step a numpy and a torch VisitState through ``tokens`` column by column, assert that
    ``allowed`` and the state agree at every step; ``takes[t]``: rows kept after step ``t``.
    Returns how often each rule fired (so that callers can check the test is not vacuous)."""
    takes = takes or {}
    ref = VisitState(tokens.shape[0])
    dev = VisitState(tokens.shape[0], device=device)
    caps_t = torch.from_numpy(caps).to(device)
    rows = np.arange(tokens.shape[0])
    fired = {"full": 0, "capped": 0, "last_visit": 0, "at_start": 0}
    for t in range(tokens.shape[1]):
        kw: dict[str, Any] = {"max_codes": MAX_CODES, "max_visits": MAX_VISITS,
                              "n_tokens": N_TOKENS}
        expected = ref.allowed(caps, **kw)
        got = dev.allowed(caps_t, **kw)
        for name, e, g in zip(("lower", "no_visit_end", "no_end"), expected, got, strict=True):
            g_np = g.cpu().numpy()
            assert g_np.dtype == e.dtype, (name, t)
            assert np.array_equal(g_np, e), (name, t)
        lower, no_visit_end, no_end = expected
        fired["full"] += int((lower == N_TOKENS).sum())
        fired["capped"] += int(((lower > ref.last) & (ref.last >= N_SPECIAL)
                                & (lower < N_TOKENS)).sum())
        fired["last_visit"] += int((no_visit_end & ~no_end).sum())
        fired["at_start"] += int(no_end.sum())
        tok = tokens[rows, t]
        ref.advance(tok)
        dev.advance(torch.from_numpy(tok).to(device))
        if t in takes:
            keep = takes[t]
            rows = rows[keep]
            ref.take(keep)
            dev.take(torch.from_numpy(keep).to(device))
        for name in ("last", "rep", "vlen", "nvis"):
            assert np.array_equal(getattr(dev, name).cpu().numpy(), getattr(ref, name)), name
    return fired


@pytest.mark.parametrize("device", DEVICES)
def test_numpy_and_torch_rules_agree_on_random_sequences(device: str) -> None:
    rng = np.random.default_rng(4)
    tokens = _random_tokens(rng, 500, 16)
    caps = np.zeros(N_TOKENS, dtype=np.int64)
    caps[N_SPECIAL:] = [1, 2, 3, 1]
    # Finished-row compaction: subsets, reordered.
    takes = {5: rng.permutation(500)[:400], 9: np.flatnonzero(rng.random(400) < 0.7)[::-1].copy()}
    fired = _step_both(tokens, caps, device, takes)
    # Every rule decided something somewhere.
    assert all(count > 0 for count in fired.values()), fired


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(st.integers(0, N_TOKENS - 1), min_size=8, max_size=8),
                  min_size=1, max_size=6),
    caps=st.lists(st.integers(1, 3), min_size=N_TOKENS - N_SPECIAL,
                  max_size=N_TOKENS - N_SPECIAL),
)
def test_numpy_and_torch_rules_agree_on_any_sequence(rows: list[list[int]], caps: list[int]
                                                     ) -> None:
    cap_arr = np.array([0] * N_SPECIAL + caps, dtype=np.int64)
    _step_both(np.array(rows, dtype=np.int64), cap_arr, "cpu")


def test_torch_state_on_a_hand_made_sequence() -> None:
    """The torch state on a hand-made sequence gives the documented answers (the same
    sequence as test_constraints' numpy check)."""
    a, b, c = N_SPECIAL, N_SPECIAL + 1, N_SPECIAL + 2
    caps = torch.tensor([0, 0, 0, 2, 1, 1, 1])
    state = VisitState(1, device="cpu")
    lowers, no_visit_ends = [], []
    for tok in (a, a, b, VISIT_END, c, END):
        lower, no_visit_end, _ = state.allowed(caps, max_codes=3, max_visits=2, n_tokens=7)
        lowers.append(int(lower[0]))
        no_visit_ends.append(bool(no_visit_end[0]))
        state.advance(torch.tensor([tok]))
    assert lowers == [a, a, b, 7, a, c + 1]
    assert no_visit_ends == [True, False, False, False, True, True]


@pytest.mark.parametrize("sampler", ["torch", "compiled"])
@pytest.mark.parametrize("options", [{}, {"top_p": 0.9}])
def test_sampled_tokens_obey_the_rules_with_per_category_caps(
        sampler: str, options: dict[str, Any]) -> None:
    torch.manual_seed(2)
    n_tokens, max_len, max_codes, max_visits = N_SPECIAL + 6, 16, 4, 3
    model = TransformerLM(n_tokens, max_len, 32, 1, 2).eval()
    with torch.no_grad():  # favour categories over markers: visits fill up, caps bind
        model.out_bias[N_SPECIAL:] += 1.5
        model.out_bias[N_SPECIAL] += 1.5
    caps = torch.tensor([0] * N_SPECIAL + [2, 1, 3, 1, 2, 1], dtype=torch.int64)
    n = 300
    out = generate(make_decoder(model), torch.arange(n) % 2, torch.rand(n) * 90,
                   max_repeats=caps, max_len=max_len, max_codes=max_codes,
                   max_visits=max_visits, seed=3, sampler=sampler,  # type: ignore[arg-type]
                   **options).numpy()
    lower, no_visit_end, no_end = allowed_tokens(
        out, caps.numpy(), max_codes=max_codes, max_visits=max_visits, n_tokens=n_tokens)
    real = out != PAD
    tok = out[real]
    is_cat = tok >= N_SPECIAL
    assert (tok[is_cat] >= lower[real][is_cat]).all()
    assert (tok[is_cat] < n_tokens).all()
    assert not no_visit_end[real][tok == VISIT_END].any()
    assert not no_end[real][tok == END].any()
    assert (out[:, 0] >= N_SPECIAL).all()
    # Direct checks of the caps and limits, and that they bind somewhere.
    full = capped = max_out = 0
    for row in out:
        seq = row[: int(np.argmax(row == END)) + 1]
        assert seq[-1] == END and (row[seq.size:] == PAD).all()
        visits = np.split(seq[:-1], np.flatnonzero(seq[:-1] == VISIT_END) + 1)
        visits = [v[v != VISIT_END] for v in visits]
        assert len(visits) <= max_visits
        max_out += len(visits) == max_visits
        for v in visits:
            assert 1 <= v.size <= max_codes and (np.diff(v) >= 0).all()
            counts = np.bincount(v, minlength=n_tokens)
            assert (counts <= caps.numpy()).all()
            full += v.size == max_codes
            capped += int((counts[N_SPECIAL:] == caps.numpy()[N_SPECIAL:]).any())
    assert full > 0 and capped > 0 and max_out > 0, (full, capped, max_out)
