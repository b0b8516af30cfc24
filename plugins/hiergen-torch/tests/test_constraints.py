"""The training mask (hiergen_torch.constraints) allows exactly what the decoder allows."""

from __future__ import annotations

import numpy as np
import torch

from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from hiergen_torch.constraints import allowed_tokens, mask_logits
from hiergen_torch.decoding import generate
from hiergen_torch.models import TransformerLM, make_decoder

A, B, C = N_SPECIAL, N_SPECIAL + 1, N_SPECIAL + 2
N_TOKENS = N_SPECIAL + 3


def test_rules_on_a_hand_made_sequence() -> None:
    caps = np.array([0, 0, 0, 2, 1, 1])  # A may repeat once, B and C not
    seq = np.array([[A, A, B, VISIT_END, C, END, PAD]])
    lower, no_visit_end, no_end = allowed_tokens(seq, caps, max_codes=3, max_visits=2,
                                                 n_tokens=N_TOKENS)
    # Before A: a visit start; after A: A again; after A, A: B (cap); after A, A, B: the
    # visit is full (3 codes); after VISIT_END: a start; after C: past C.
    assert lower[0, :6].tolist() == [A, A, B, N_TOKENS, A, C + 1]
    assert no_end[0, :6].tolist() == [True, False, False, False, True, False]
    # The second visit is the last one allowed: VISIT_END is excluded from then on.
    assert no_visit_end[0, :6].tolist() == [True, False, False, False, True, True]


def test_generated_tokens_are_always_allowed() -> None:
    torch.manual_seed(3)
    max_len = 12
    model = TransformerLM(N_TOKENS + 4, max_len, 32, 1, 2).eval()
    caps = torch.full((N_TOKENS + 4,), 2, dtype=torch.int64)
    caps[:N_SPECIAL] = 0
    n = 400
    out = generate(make_decoder(model), torch.arange(n) % 2, torch.rand(n) * 90,
                   max_repeats=caps, max_len=max_len, max_codes=4, max_visits=3, seed=9,
                   sampler="compiled").numpy()
    lower, no_visit_end, no_end = allowed_tokens(out, caps.numpy(), max_codes=4, max_visits=3,
                                                 n_tokens=N_TOKENS + 4)
    real = out != PAD
    tok = out[real]
    is_cat = tok >= N_SPECIAL
    assert (tok[is_cat] >= lower[real][is_cat]).all()
    assert not no_visit_end[real][tok == VISIT_END].any()
    assert not no_end[real][tok == END].any()
    # And the mask does exclude something somewhere (it is not vacuous).
    assert (lower[real] > N_SPECIAL).any() and no_visit_end[real].any()


def test_mask_keeps_the_target_and_excludes_the_rest() -> None:
    logits = torch.zeros(2, N_TOKENS)
    target = torch.tensor([A, VISIT_END])
    masked = mask_logits(logits, target, torch.tensor([B, N_TOKENS]),
                         torch.tensor([True, True]), torch.tensor([False, True]))
    # Row 0: categories below B excluded (A, but it is the target: kept), PAD excluded,
    # VISIT_END excluded, END allowed, B and C allowed.
    assert torch.isinf(masked[0]).tolist() == [True, True, False, False, False, False]
    # Row 1: every category excluded; VISIT_END is the target, so kept; END excluded.
    assert torch.isinf(masked[1]).tolist() == [True, False, True, True, True, True]
