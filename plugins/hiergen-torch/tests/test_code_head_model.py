"""The ``code_head`` weighting strategy: trained into a model, saved, loaded, generated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_code_head import LINK_VISITS, LINK_VOCAB, TINY_HEAD, visits_cohort

from hiergen.errors import ModelError
from hiergen.model import SAMPLER_DIR, HiergenModel
from hiergen.train import train
from hiergen_torch.code_head import CodeHeadSampler

PARAMS = {**TINY_HEAD, "epochs": 15}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("code_head") / "m"
    train(visits_cohort(LINK_VISITS, LINK_VOCAB), out, generator="markov",
          weighting="code_head", generator_params={"order": 1}, weighting_params=PARAMS)
    return out


def test_the_model_draws_its_codes_with_the_head(model_dir: Path) -> None:
    model = HiergenModel.load(model_dir)
    assert isinstance(model.sampler, CodeHeadSampler)
    assert model.to_config()["weighting"]["sampler"] == {"directory": SAMPLER_DIR}
    out = model.generate(n=2000, seed=3)
    h = model.hierarchy
    cats = h.code_category[out.codes]
    assert np.array_equal(cats, out.stage1.categories)
    vo = out.stage1.visit_offsets
    pairs = 0
    linked = 0
    for v in range(vo.size - 1):
        visit = out.codes[vo[v]:vo[v + 1]]
        assert np.unique(visit).size == visit.size
        if h.code_id("250.40") in visit and (cats[vo[v]:vo[v + 1]] == h.category_id("585")).any():
            pairs += 1
            linked += int(h.code_id("585.3") in visit)
    # 250.40 always comes with 585.3 in training; a head that sees the code drawn before
    # keeps that (the table-free frequency rule would give about 0.5).
    assert pairs > 200
    assert linked / pairs > 0.9


def test_same_codes_before_and_after_saving(model_dir: Path, tmp_path: Path) -> None:
    trained = train(visits_cohort(LINK_VISITS, LINK_VOCAB), tmp_path / "m", generator="markov",
                    weighting="code_head", generator_params={"order": 1},
                    weighting_params=PARAMS)
    loaded = HiergenModel.load(tmp_path / "m")
    assert trained.generate(n=600, seed=9).to_arrow().equals(
        loaded.generate(n=600, seed=9).to_arrow())


def test_generate_cli_with_worker_processes(model_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hiergen.cli.main import cli

    result = CliRunner().invoke(
        cli, ["generate", str(model_dir), "-n", "400", "-o", str(tmp_path / "out"), "--format",
              "csv", "--seed", "5", "--shard-size", "200", "--workers", "2", "--no-progress"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "400 patients" in result.output


def test_a_model_whose_strategy_is_missing_is_a_clear_error(model_dir: Path,
                                                             tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "model.json").read_text())
    config["weighting"]["name"] = "no_such_strategy"
    (copy / "model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="no_such_strategy.*not installed"):
        HiergenModel.load(copy)


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(ValueError, match="unknown parameter 'depth'"):
        train(visits_cohort(LINK_VISITS, LINK_VOCAB), None, generator="markov",
              weighting="code_head", weighting_params={"depth": 3})
