"""``hiergen train`` and ``hiergen generate`` through the click command line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_model_helpers import small_cohort

from hiergen.cli.main import cli
from hiergen.generation.manifest import MANIFEST_FILE
from hiergen.model import MODEL_FILE, default_model_dir


def _write_table(path: Path) -> None:
    cohort = small_cohort(150)
    lines = ["patient_id,visit_id,code,age,sex"]
    vp = cohort.visit_patient
    for v in range(cohort.n_visits):
        p = int(vp[v])
        for c in cohort.codes[cohort.visit_offsets[v] : cohort.visit_offsets[v + 1]]:
            sex = "MF"[int(cohort.sex[v])]
            lines.append(f"p{p},v{v},{cohort.vocab[int(c)]},{float(cohort.age[v]):.2f},{sex}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    _write_table(root / "table.csv")
    result = CliRunner().invoke(
        cli,
        ["train", str(root / "table.csv"), "--format", "table", "--generator", "markov",
         "--weighting", "frequency", "-p", "order=1", "-o", str(root / "model")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "trained markov + frequency on 150 patients" in result.output
    return root / "model"


def test_train_writes_a_model_directory(trained: Path) -> None:
    config = json.loads((trained / MODEL_FILE).read_text())
    assert config["generator"]["name"] == "markov"
    assert config["training_summary"]["format"] == "table"


@pytest.mark.parametrize("fmt", ["meds", "parquet", "csv"])
def test_generate_each_format(trained: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["generate", str(trained), "-n", "250", "-o", str(out), "--format", fmt, "--seed", "3",
         "--shard-size", "100", "--no-progress"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("250 patients,") and "3 shards" in result.output
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["complete"] and manifest["job"]["writer"] == fmt
    assert len(list((out / "data").iterdir())) == 3
    if fmt == "meds":
        assert (out / "metadata" / "dataset.json").is_file()


def test_generate_refuses_non_empty_output(trained: Path, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    result = CliRunner().invoke(cli, ["generate", str(trained), "-n", "5", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output and "--overwrite" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "-n/--patients is required"),
        (["-n", "5", "--resume", "--overwrite"], "cannot be combined"),
        (["-n", "5", "--age-range", "60-40"], "age-range"),
        (["-n", "5", "--address", "ray://x"], "--engine ray"),
    ],
)
def test_generate_usage_errors(trained: Path, tmp_path: Path, args: list[str], message: str
                               ) -> None:
    result = CliRunner().invoke(cli, ["generate", str(trained), "-o", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_generate_with_sex_and_age_range(trained: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["generate", str(trained), "-n", "200", "-o", str(tmp_path / "o"), "--format",
              "parquet", "--sex", "F", "--age-range", "40-60", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "o" / "data")
    assert set(table.column("sex").to_pylist()) == {"F"}


def test_unknown_format_lists_the_writers(trained: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["generate", str(trained), "-n", "5", "-o", str(tmp_path / "o"), "-f", "xlsx"]
    )
    assert result.exit_code == 1
    assert "meds" in result.output and "csv" in result.output


def test_default_model_main_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (default_model_dir() / MODEL_FILE).is_file():
        pytest.skip("default model not trained in this checkout")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["generate", "-n", "100000", "-o", "synthetic/",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("100,000 patients")
    ids = pq.read_table(tmp_path / "synthetic" / "data", columns=["subject_id"])
    assert len(set(ids.column("subject_id").to_pylist())) == 100_000


def test_generate_from_demographics_file(trained: Path, tmp_path: Path) -> None:
    demo = tmp_path / "people.csv"
    demo.write_text("age,sex\n65,M\n42.5,F\n")
    result = CliRunner().invoke(
        cli, ["generate", str(trained), "-o", str(tmp_path / "o"), "--format", "parquet",
              "--demographics", str(demo), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 patients")
    table = pq.read_table(tmp_path / "o" / "data")
    assert set(table.column("patient_id").to_pylist()) == {0, 1}
    bad = CliRunner().invoke(
        cli, ["generate", str(trained), "-o", str(tmp_path / "p"), "--demographics", str(demo),
              "--sex", "F"],
    )
    assert bad.exit_code == 2 and "cannot be combined" in bad.output
