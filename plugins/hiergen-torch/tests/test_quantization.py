"""quantize="int8": an int8 copy of the network samples on CPU, close to the float32 one."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_testdata import TINY

from hiergen import Cohort, Hierarchy
from hiergen_torch import LSTMGenerator, TransformerGenerator
from hiergen_torch.generator import TorchGenerator
from hiergen_torch.quantization import quantize_int8


@pytest.fixture()
def int8(fitted: TorchGenerator, tmp_path: Path) -> TorchGenerator:
    """The fitted generator reloaded with quantize="int8" (the fixture itself stays float32)."""
    fitted.save(tmp_path / "m")
    gen = type(fitted).load(tmp_path / "m", progress=False)
    gen.config.quantize = "int8"
    return gen


def test_int8_copy_leaves_the_model_alone(fitted: TorchGenerator) -> None:
    model = fitted.model
    assert model is not None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_int8(model)
    assert type(q) is type(model)
    def n_dynamic(net: torch.nn.Module) -> int:
        return sum(".quantized.dynamic." in type(m).__module__ for m in net.modules())

    assert n_dynamic(q) >= 1
    assert n_dynamic(model) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_int8_likelihood_close_to_float32(fitted: TorchGenerator, int8: TorchGenerator,
                                          cohort: Cohort) -> None:
    # The int8 network is a different (slightly perturbed) model: its held-out NLL per token
    # moves, but by far less than the gap between a trained and an untrained model.
    ref = fitted.nll(cohort)
    got = int8.nll(cohort)
    assert got != ref
    assert abs(got - ref) < 0.01 * ref, (ref, got)


def test_int8_samples_keep_conditioning_and_seed(int8: TorchGenerator,
                                                 hierarchy: Hierarchy) -> None:
    n = 300
    women = int8.sample(np.full(n, 30.0), np.ones(n, dtype=int), seed=2)
    men = int8.sample(np.full(n, 60.0), np.zeros(n, dtype=int), seed=2)
    f_cat, m_cat = hierarchy.category_id("650"), hierarchy.category_id("600")
    assert np.mean(women.categories == f_cat) > 0.1
    assert np.mean(men.categories == f_cat) < 0.01
    assert np.mean(men.categories == m_cat) > 0.1
    assert np.mean(women.categories == m_cat) < 0.01
    again = int8.sample(np.full(n, 30.0), np.ones(n, dtype=int), seed=2)
    assert np.array_equal(women.categories, again.categories)
    assert np.array_equal(women.visit_offsets, again.visit_offsets)


def test_int8_copy_made_once_and_renewed_with_the_model(int8: TorchGenerator) -> None:
    int8.sample([50.0], [0], seed=0)
    first = int8._int8
    int8.sample([50.0], [1], seed=1)
    assert int8._int8 is first
    assert first is not None and first[0] is int8.model
    # A new network (as fit() or another load gives) gets its own copy.
    assert int8.model is not None
    int8.model = copy.deepcopy(int8.model)
    int8.sample([50.0], [0], seed=0)
    assert int8._int8 is not None and int8._int8 is not first
    assert int8._int8[0] is int8.model


def test_bad_quantize_values(cohort: Cohort, hierarchy: Hierarchy) -> None:
    with pytest.raises(ValueError, match="quantize: expected one of none, int8, got 'int4'"):
        TransformerGenerator(quantize="int4")
    with pytest.raises(ValueError, match="quantize: 'int8' runs on CPU only"):
        LSTMGenerator(device="cuda", quantize="int8")
    gen = TransformerGenerator(progress=False, **{**TINY, "epochs": 1})
    gen.fit(cohort, hierarchy, seed=0)
    gen.config.quantize = "fp4"  # set after construction: checked when sampling
    with pytest.raises(ValueError, match="quantize: expected one of"):
        gen.sample([50.0], [0], seed=0)
