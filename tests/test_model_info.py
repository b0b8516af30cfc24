"""``hiergen info`` and :mod:`hiergen.model_info`: what a trained model holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_context import LINK_VISITS, LINK_VOCAB, make_cohort

from hiergen.cli.main import cli
from hiergen.model import HiergenModel
from hiergen.model_info import base_shares, context_rows, describe, format_rows
from hiergen.train import train

# The link cohort (250.40 always with 585.3, 250.00 with 585.9) plus visits where 250.00 comes
# with 585.3: the (585, 250.40) table is then the more telling one.
VISITS = list(LINK_VISITS) + [["250.00", "585.3"]] * 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("info") / "model"
    train(make_cohort(VISITS, LINK_VOCAB), out,
          weighting_params={"min_support": 10}, generator_params={"order": 1})
    return out


@pytest.fixture(scope="module")
def model(model_dir: Path) -> HiergenModel:
    return HiergenModel.load(model_dir)


def test_describe_counts_the_model(model: HiergenModel, model_dir: Path) -> None:
    info = describe(model)
    assert info["directory"] == str(model_dir) and not info["shipped_default"]
    assert info["bytes"] == sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    assert info["training"]["visits"] == len(VISITS)
    assert info["hierarchy"] == {"codes": 5, "categories": 3, "codes_as_own_categories": 0}
    s2 = info["stage2"]
    assert s2["weighting"] == "context" and s2["params"]["min_support"] == 10
    ct = s2["context_tables"]
    assert ct["tables"] == model.context.n_tables > 0
    assert ct["support_min"] == int(model.context.support.min()) >= 10
    json.dumps(info)  # JSON-ready


def test_rows_of_a_category_show_the_link(model: HiergenModel) -> None:
    rows = context_rows(model, category="585")
    # Best first: 250.40 always came with 585.3; 250.00 with 585.9 in 100 of its 120 visits.
    assert [r["context"] for r in rows] == ["250.40", "250.00"]
    assert rows[0]["score"] > rows[1]["score"]
    # The table puts (almost) all weight on 585.3, against 120 of the 220 visits with 585
    # without context.
    top = rows[0]["codes"][0]
    assert top["code"] == "585.3" and top["share"] > 0.9
    assert top["base_share"] == pytest.approx(120 / 220, abs=0.05)
    assert [r["support"] for r in rows] == [100, 120]
    assert context_rows(model, category="585", top=1) == rows[:1]


def test_rows_of_a_context_code(model: HiergenModel) -> None:
    rows = context_rows(model, context="250.40")
    assert rows and all(r["context"] == "250.40" for r in rows)
    assert {r["category"] for r in rows} == {"585"}


def test_base_shares_are_the_category_distribution(model: HiergenModel) -> None:
    c = model.hierarchy.category_id("585")
    shares = base_shares(model, c)
    assert shares.shape == (2,) and shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"category": "999"}, "category '999' is not in the model"),
    ({"context": "999.9"}, "code '999.9' is not in the model"),
    ({}, "pass a category or a context code"),
    ({"category": "585", "context": "250.40"}, "pass a category or a context code"),
    ({"category": "585", "top": 0}, "top: expected at least 1"),
])
def test_bad_requests(model: HiergenModel, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        context_rows(model, **kwargs)


def test_a_model_without_context_tables(tmp_path: Path) -> None:
    m = train(make_cohort(VISITS, LINK_VOCAB), weighting="frequency")
    assert "context_tables" not in describe(m)["stage2"]
    with pytest.raises(ValueError, match="no context tables; train with --weighting context"):
        context_rows(m, category="585")


def test_cli_text_and_json(model_dir: Path) -> None:
    r = CliRunner().invoke(cli, ["info", str(model_dir), "--category", "585"])
    assert r.exit_code == 0, r.output
    assert "context tables of category 585" in r.output and "585.3" in r.output
    r = CliRunner().invoke(cli, ["info", str(model_dir), "--context", "250.40", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["tables"][0]["by"] == "context"
    assert [row["context"] for row in info["tables"][0]["rows"]] == ["250.40"]


def test_cli_bad_category_names_it(model_dir: Path) -> None:
    r = CliRunner().invoke(cli, ["info", str(model_dir), "--category", "999"])
    assert r.exit_code == 2
    assert "category '999' is not in the model" in r.output and "--category" in r.output


def test_cli_names_the_option_when_the_model_has_no_tables(tmp_path: Path) -> None:
    out = tmp_path / "freq"
    train(make_cohort(VISITS, LINK_VOCAB), out, weighting="frequency")
    r = CliRunner().invoke(cli, ["info", str(out), "--category", "585"])
    assert r.exit_code == 2
    assert "Invalid value for --category" in r.output and "no context tables" in r.output


def test_cli_default_model() -> None:
    r = CliRunner().invoke(cli, ["info", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["shipped_default"] is True
    assert info["stage2"]["context_tables"]["tables"] > 0


def test_format_rows_empty() -> None:
    assert format_rows([]) == "no context tables"
