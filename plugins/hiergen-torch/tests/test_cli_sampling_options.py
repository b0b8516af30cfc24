"""``hiergen generate --sampling-option`` with a transformer trained by ``hiergen train``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from torch_testdata import make_cohort

from hiergen.cli.main import cli
from hiergen.generation.manifest import MANIFEST_FILE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("torch_cli")
    cohort = make_cohort(300)
    lines = ["patient_id,visit_id,code,age,sex"]
    for v in range(cohort.n_visits):
        for c in cohort.codes[cohort.visit_offsets[v]: cohort.visit_offsets[v + 1]]:
            lines.append(f"p{int(cohort.visit_patient[v])},v{v},{cohort.vocab[int(c)]},"
                         f"{float(cohort.age[v]):.1f},{'MF'[int(cohort.sex[v])]}")
    (root / "table.csv").write_text("\n".join(lines) + "\n")
    params = ["d_model=16", "n_layers=1", "n_heads=2", "epochs=2", "batch_size=64",
              "dropout=0.0"]
    result = CliRunner().invoke(
        cli, ["train", str(root / "table.csv"), "--format", "table", "--generator",
              "transformer", *[x for p in params for x in ("-p", p)], "-o",
              str(root / "model")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root / "model"


def _generate(model: Path, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["generate", str(model), "-n", "400", "-o", str(out), "--format", "parquet",
              "--shard-size", "200", "--no-progress", *args])
    return result.exit_code, result.output


def _codes(out: Path) -> list[str]:
    return [c for f in sorted((out / "data").iterdir())
            for c in pq.read_table(f).column("code").to_pylist()]


def test_sampling_options_reach_every_worker_and_the_manifest(model_dir: Path,
                                                             tmp_path: Path) -> None:
    rc, text = _generate(model_dir, tmp_path / "plain")
    assert rc == 0, text
    # top_k=1 is greedy: it changes the patients, in the worker processes too.
    rc, text = _generate(model_dir, tmp_path / "greedy", "--workers", "2",
                         "--sampling-option", "top_k=1", "--sampling-option", "quantize=int8")
    assert rc == 0, text
    assert _codes(tmp_path / "greedy") != _codes(tmp_path / "plain")
    job = json.loads((tmp_path / "greedy" / MANIFEST_FILE).read_text())["job"]
    assert job["sampling_options"] == {"quantize": "int8", "top_k": 1}
    assert "sampling_options" not in json.loads(
        (tmp_path / "plain" / MANIFEST_FILE).read_text())["job"]
    # The same options in one process give the same files (worker-count invariance holds).
    rc, text = _generate(model_dir, tmp_path / "greedy1", "--sampling-option", "top_k=1",
                         "--sampling-option", "quantize=int8")
    assert rc == 0, text
    assert _codes(tmp_path / "greedy1") == _codes(tmp_path / "greedy")
    # Resuming with other options is refused.
    rc, text = _generate(model_dir, tmp_path / "greedy", "--resume")
    assert rc == 1 and "different job parameters" in text and "sampling_options" in text


@pytest.mark.parametrize(("option", "message"), [
    ("quantize=int4", "quantize: expected one of none, int8, got 'int4'"),
    ("top_p=2", "top_p: must be in (0, 1]"),
    ("temperature=warm", "temperature: expected a number, got 'warm'"),
    ("beam=4", "transformer does not take beam"),
    ("top_k", "expected KEY=VALUE"),
])
def test_bad_sampling_options_fail_before_any_output(model_dir: Path, tmp_path: Path,
                                                     option: str, message: str) -> None:
    rc, text = _generate(model_dir, tmp_path / "out", "--sampling-option", option)
    assert rc != 0 and message in text, text
    assert not (tmp_path / "out").exists()
