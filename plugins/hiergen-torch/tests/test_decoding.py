"""Fast sampling: the incremental decoders agree with the full forward pass, the compiled and
torch samplers both honour the constraints, and worker count does not change the output."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch_testdata import TINY

from hiergen import Cohort, Hierarchy
from hiergen.generators.sequences import END, N_SPECIAL, PAD, VISIT_END
from hiergen_torch import LSTMGenerator, TransformerGenerator
from hiergen_torch.decoding import generate
from hiergen_torch.models import LSTMLM, TransformerLM, make_decoder

N_TOKENS, MAX_LEN = 40, 12


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_incremental_decoder_matches_forward_and_survives_compaction(kind: str) -> None:
    torch.manual_seed(0)
    model = (TransformerLM(N_TOKENS, MAX_LEN, 32, 2, 4) if kind == "transformer"
             else LSTMLM(N_TOKENS, MAX_LEN, 32, 2)).eval()
    b, t = 6, 7
    sex = torch.tensor([0, 1, 0, 1, 1, 0])
    age = torch.linspace(0, 90, b)
    tokens = torch.randint(N_SPECIAL, N_TOKENS, (b, t))
    with torch.inference_mode():
        full = model(sex, age, tokens)  # (b, t + 1, V)
        dec = make_decoder(model)
        rows = torch.arange(b)
        step = dec.start(sex, age, MAX_LEN)
        torch.testing.assert_close(step, full[:, 0], atol=1e-4, rtol=1e-4)
        for i in range(t):
            if i in (2, 4):  # drop rows as finished patients would leave
                keep = torch.arange(rows.shape[0] - 1)
                keep = keep[keep != 1] if keep.shape[0] > 2 else keep
                rows = rows[keep]
                dec.keep(keep)
            step = dec.step(tokens[rows, i])
            torch.testing.assert_close(step, full[rows, i + 1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("sampler", ["compiled", "torch"])
@pytest.mark.parametrize("options", [{}, {"top_k": 4}, {"top_p": 0.8}, {"temperature": 0.0}])
def test_generated_sequences_respect_the_constraints(sampler: str, options: dict[str, Any]
                                                     ) -> None:
    torch.manual_seed(1)
    model = TransformerLM(N_TOKENS, MAX_LEN, 32, 1, 2).eval()
    with torch.no_grad():
        model.out_bias[END] = 1.0
    caps = torch.full((N_TOKENS,), 2, dtype=torch.int64)
    caps[:N_SPECIAL] = 0
    n = 300
    sex = torch.arange(n) % 2
    age = torch.rand(n) * 90
    out = generate(make_decoder(model), sex, age, max_repeats=caps, max_len=MAX_LEN,
                   max_codes=4, max_visits=3, seed=5, sampler=sampler,  # type: ignore[arg-type]
                   **options).numpy()
    assert out.shape == (n, MAX_LEN)
    for row in out:
        seq = row[: int(np.argmax(row == END)) + 1]
        assert seq[-1] == END and (row[seq.size:] == PAD).all()
        assert PAD not in seq and seq[0] >= N_SPECIAL
        visits = np.split(seq[:-1], np.flatnonzero(seq[:-1] == VISIT_END) + 1)
        assert len(visits) <= 3
        for v in visits:
            cats = v[v >= N_SPECIAL]
            assert cats.size >= 1 and cats.size <= 4
            assert (np.diff(cats) >= 0).all()
            assert np.bincount(cats).max() <= 2
    again = generate(make_decoder(model), sex, age, max_repeats=caps, max_len=MAX_LEN,
                     max_codes=4, max_visits=3, seed=5, sampler=sampler,  # type: ignore[arg-type]
                     **options).numpy()
    assert np.array_equal(out, again)


@pytest.mark.parametrize("cls", [TransformerGenerator, LSTMGenerator])
def test_workers_do_not_change_the_patients(cls: type, cohort: Cohort, hierarchy: Hierarchy
                                            ) -> None:
    gen = cls(progress=False, threads=1, **{**TINY, "epochs": 1, "sample_batch_size": 32})
    gen.fit(cohort, hierarchy, seed=0)
    age, sex = np.linspace(0, 90, 150), np.arange(150) % 2
    gen.workers = 1
    one = gen.sample(age, sex, seed=11)
    gen.workers = 3
    three = gen.sample(age, sex, seed=11)
    for field in ("patient_offsets", "visit_offsets", "categories"):
        assert np.array_equal(getattr(one, field), getattr(three, field))
    with pytest.raises(ValueError, match="workers"):
        cls(workers=0)
    with pytest.raises(ValueError, match="sampler"):
        cls(sampler="fast")
