"""``hiergen evaluate`` and the report files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_evaluate_support import random_cohort

from hiergen.cohort import Cohort
from hiergen.evaluate import evaluate, text_table, to_html, to_markdown, write_report
from hiergen.evaluate.inputs import concat, guess_format, read_cohort


def write_flat(cohort: Cohort, path: Path) -> Path:
    """The flat long table of ``hiergen generate --format parquet|csv``."""
    vp = np.repeat(cohort.visit_patient, cohort.visit_lengths)
    first = np.repeat(cohort.patient_offsets[:-1], cohort.visits_per_patient)
    vi = np.repeat(np.arange(cohort.n_visits) - first, cohort.visit_lengths)
    codes = [cohort.vocab[i] for i in cohort.codes]
    table = pa.table({
        "patient_id": pa.array(vp, pa.int64()),
        "visit_index": pa.array(vi, pa.int32()),
        "age": pa.array(np.repeat(cohort.age, cohort.visit_lengths), pa.float32()),
        "sex": pa.array(["MF"[s] for s in np.repeat(cohort.sex, cohort.visit_lengths)]),
        "category": pa.array([c.split(".")[0] for c in codes]),
        "code": pa.array(codes),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def cohorts() -> dict[str, Cohort]:
    return {
        "train": random_cohort(1200, seed=1),
        "real": random_cohort(400, seed=2),
        "synthetic": random_cohort(400, seed=3),
    }


def test_flat_directory_round_trip(tmp_path: Path, cohorts: dict[str, Cohort]) -> None:
    syn = cohorts["synthetic"]
    data = tmp_path / "out" / "data"
    write_flat(syn.select_patients(np.arange(150)), data / "part-0.parquet")
    write_flat(syn.select_patients(np.arange(150, 400)), data / "part-1.parquet")
    assert guess_format(tmp_path / "out") == "flat"
    back = read_cohort(tmp_path / "out")
    assert back.n_visits == syn.n_visits
    assert back.n_rows == syn.n_rows
    assert sorted(back.vocab) == sorted(set(syn.vocab) & {back.vocab[i] for i in back.codes})
    r = evaluate(syn, back, metrics=["unigram", "pairs"], baselines=False)
    assert r["code_pair_r2"].value == pytest.approx(1.0)


def test_concat_merges_vocabularies(cohorts: dict[str, Cohort]) -> None:
    a, b = cohorts["real"], cohorts["synthetic"]
    both = concat([a, b])
    assert both.n_patients == a.n_patients + b.n_patients
    got = [both.vocab[i] for i in both.codes[both.visit_offsets[a.n_visits]:]]
    assert got == [b.vocab[i] for i in b.codes]


def test_report_outputs(tmp_path: Path, cohorts: dict[str, Cohort]) -> None:
    report = evaluate(cohorts["real"], cohorts["synthetic"], train=cohorts["train"],
                      privacy_sample=100)
    table = text_table(report)
    assert table.splitlines()[0].split() == ["metric", "synthetic", "real", "ceiling", "floor",
                                             "gap", "closed"]
    assert "code_pair_r2" in table
    md = to_markdown(report)
    assert "| `code_pair_r2` |" in md
    page = to_html(report)
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    svgs = page.split('<div class="plots">')[1].split("</div>")[0]
    root = ET.fromstring(f"<root>{svgs}</root>")
    assert len(root) == 4  # code and category scatter, two length histograms
    paths = write_report(report, tmp_path / "rep")
    data = json.loads(paths[2].read_text())
    keys = {m["key"] for m in data["metrics"]}
    assert {"code_pair_r2", "exact_copy_rate", "mia_auc", "sex_impossible_rate"} <= keys


def test_cli_evaluate_flat_csv(tmp_path: Path, cohorts: dict[str, Cohort]) -> None:
    from hiergen.cli.main import cli

    real = write_flat(cohorts["real"], tmp_path / "real.csv")
    train = write_flat(cohorts["train"], tmp_path / "train.parquet")
    syn = write_flat(cohorts["synthetic"], tmp_path / "syn" / "data" / "part-0.csv")
    result = CliRunner().invoke(cli, [
        "evaluate", "--real", str(real), "--train", str(train), "--synthetic", str(syn.parents[1]),
        "-o", str(tmp_path / "report"), "--privacy-sample", "100",
    ])
    assert result.exit_code == 0, result.output
    assert "code_pair_r2" in result.output
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000


def test_cli_evaluate_reports_bad_input(tmp_path: Path) -> None:
    from hiergen.cli.main import cli

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(cli, ["evaluate", "--real", str(bad), "--synthetic", str(bad)])
    assert result.exit_code == 1
    assert "Error:" in result.output


def test_evaluate_output_of_generate(tmp_path: Path, mimic3_demo_dir: Path) -> None:
    """The command the issue asks for: `hiergen evaluate` on what `hiergen generate` wrote."""
    pytest.importorskip("hiergen._core", reason="compiled extension not built")
    from hiergen.cli.main import cli

    runner = CliRunner()
    model, out = tmp_path / "model", tmp_path / "synthetic"
    r = runner.invoke(cli, ["train", str(mimic3_demo_dir), "-f", "mimic3", "-o", str(model)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["generate", str(model), "-n", "150", "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [
        "evaluate", "--real", str(mimic3_demo_dir), "--synthetic", str(out),
        "-o", str(tmp_path / "report"), "--json",
    ])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    values = {m["key"]: m for m in data["metrics"]}
    assert values["code_unigram_r2"]["value"] > 0.5
    assert values["sex_impossible_rate"]["value"] == 0.0
    assert (tmp_path / "report" / "report.md").exists()
