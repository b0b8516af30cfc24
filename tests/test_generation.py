"""Sharded jobs: manifest, worker-count invariance, resume after SIGKILL, overwrite, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_model_helpers import train_small_model, tree_digest

from hiergen.errors import DataError
from hiergen.generation.demographics import DemographicsSource, read_demographics_file
from hiergen.generation.job import plan_shards, run_job
from hiergen.generation.manifest import MANIFEST_FILE
from hiergen.generation.seeds import ShardSeeds
from hiergen.model import HiergenModel


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("gmodel") / "m")


@pytest.fixture(scope="module")
def reference(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 patients in 6 shards, one worker."""
    out = tmp_path_factory.mktemp("ref") / "out"
    run_job(out, n=6000, model=model_dir, seed=21, shard_size=1000, fmt="parquet")
    return out


def test_plan_shards() -> None:
    tasks = plan_shards(2500, 1000)
    assert [(t.index, t.start, t.count) for t in tasks] == [(0, 0, 1000), (1, 1000, 1000),
                                                           (2, 2000, 500)]
    assert plan_shards(0, 10) == []


def test_shard_seeds_are_independent_of_everything_but_seed_and_index() -> None:
    a, b = ShardSeeds.of(5, 3), ShardSeeds.of(5, 3)
    assert (a.stage1, a.stage2) == (b.stage1, b.stage2)
    assert ShardSeeds.of(5, 4).stage1 != a.stage1
    assert ShardSeeds.of(6, 3).stage1 != a.stage1
    assert a.stage1 != a.stage2


def test_manifest_records_every_shard(reference: Path, model_dir: Path) -> None:
    manifest = json.loads((reference / MANIFEST_FILE).read_text())
    assert manifest["complete"] is True
    assert manifest["job"]["model_hash"] == HiergenModel.load(model_dir).content_hash
    assert manifest["job"]["n"] == 6000 and manifest["job"]["seed"] == 21
    shards = manifest["shards"]
    assert [s["index"] for s in shards] == list(range(6))
    assert sum(s["n_patients"] for s in shards) == 6000
    assert shards[4]["seed"] == {"entropy": 21, "spawn_key": [4],
                                 "stage1": ShardSeeds.of(21, 4).stage1,
                                 "stage2": ShardSeeds.of(21, 4).stage2}
    ids = np.concatenate(
        [pq.read_table(reference / s["files"][0]["path"]).column("patient_id").to_numpy()
         for s in shards]
    )
    assert np.array_equal(np.unique(ids), np.arange(6000))  # nothing lost, nothing twice
    rows = sum(s["n_rows"] for s in shards)
    assert rows == ids.size == manifest["totals"]["rows"]


def test_job_equals_python_batches(reference: Path, model_dir: Path) -> None:
    model = HiergenModel.load(model_dir)
    batches = list(model.generate_batches(6000, seed=21, batch_size=1000, as_arrow=True))
    on_disk = pq.read_table(reference / "data" / "part-00005.parquet")
    assert on_disk.equals(batches[5])


def test_worker_count_does_not_change_a_byte(
    reference: Path, model_dir: Path, tmp_path: Path
) -> None:
    run_job(tmp_path / "w2", n=6000, model=model_dir, seed=21, shard_size=1000,
            fmt="parquet", workers=2)
    assert tree_digest(tmp_path / "w2") == tree_digest(reference)


def test_non_empty_output_needs_overwrite(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(DataError, match="not empty"):
        run_job(out, n=10, model=model_dir, fmt="csv")
    run_job(out, n=10, model=model_dir, fmt="csv", overwrite=True, shard_size=4)
    first = tree_digest(out)
    run_job(out, n=20, model=model_dir, fmt="csv", overwrite=True, shard_size=4, seed=1)
    after = tree_digest(out)
    assert after != first and after["keep.txt"] == first["keep.txt"]
    assert len([k for k in after if k.startswith("data/")]) == 5


def test_resume_refuses_other_parameters(model_dir: Path, tmp_path: Path) -> None:
    run_job(tmp_path / "o", n=30, model=model_dir, seed=1, shard_size=10)
    with pytest.raises(DataError, match="seed: 1 -> 2"):
        run_job(tmp_path / "o", n=30, model=model_dir, seed=2, shard_size=10, resume=True)


def test_resume_redoes_missing_or_damaged_shards(
    reference: Path, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_job(out, n=6000, model=model_dir, seed=21, shard_size=1000, fmt="parquet")
    (out / "data" / "part-00002.parquet").unlink()
    damaged = out / "data" / "part-00004.parquet"
    damaged.write_bytes(b"x" + damaged.read_bytes()[1:])
    (out / "data" / ".part-00001.parquet.tmp-1-abc").write_bytes(b"half a file")
    summary = run_job(out, n=6000, model=model_dir, seed=21, shard_size=1000, fmt="parquet",
                      resume=True)
    assert (summary.shards_run, summary.shards_reused) == (2, 4)
    assert tree_digest(out) == tree_digest(reference)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hiergen.cli", *args]


def test_resume_after_sigkill_loses_and_duplicates_nothing(
    model_dir: Path, tmp_path: Path
) -> None:
    args = ["generate", str(model_dir), "-n", "40000", "--shard-size", "500", "--seed", "8",
            "--format", "meds", "--no-progress"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(*args, "-o", str(killed), "--workers", "2"),
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    manifest = killed / MANIFEST_FILE
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = len(json.loads(manifest.read_text())["shards"])
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"job ended before it could be killed: {proc.stderr.read()!r}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    state = json.loads(manifest.read_text())
    assert not state["complete"] and 3 <= len(state["shards"]) < 80

    summary = run_job(killed, n=40000, model=model_dir, seed=8, shard_size=500, fmt="meds",
                      resume=True)
    assert summary.shards_reused >= 3 and summary.shards_reused + summary.shards_run == 80

    clean = tmp_path / "clean"
    run_job(clean, n=40000, model=model_dir, seed=8, shard_size=500, fmt="meds")
    assert tree_digest(killed) == tree_digest(clean)
    # Every subject exactly once, in exactly one file.
    per_file = [
        np.unique(pq.read_table(f, columns=["subject_id"]).column("subject_id").to_numpy())
        for f in sorted((killed / "data").iterdir())
    ]
    assert len(per_file) == 80
    assert np.array_equal(np.sort(np.concatenate(per_file)), np.arange(40000))
    assert not [p for p in killed.rglob(".*")]  # no temporary file left


def test_demographics_file_one_patient_per_row(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "demo.csv"
    src.write_text("age,sex\n65,M\n30.5,F\n0.1,F\n")
    demo = read_demographics_file(src, resample=False)
    run_job(tmp_path / "o", n=3, model=model_dir, demographics=demo, fmt="parquet")
    table = pq.read_table(tmp_path / "o" / "data" / "part-00000.parquet")
    first = {}
    for pid, age, sex in zip(*(table.column(c).to_pylist() for c in ("patient_id", "age", "sex")),
                             strict=True):
        first.setdefault(pid, (age, sex))
    assert first[0] == (65.0, "M") and first[1][1] == "F" and first[2][1] == "F"
    with pytest.raises(DataError, match="column 'sex'"):
        (tmp_path / "bad.csv").write_text("age,sex\n65,X\n")
        read_demographics_file(tmp_path / "bad.csv", resample=False)


def test_restricted_job(model_dir: Path, tmp_path: Path) -> None:
    demo = DemographicsSource("model", sex=1, age_range=(40, 60))
    run_job(tmp_path / "o", n=500, model=model_dir, demographics=demo, fmt="parquet")
    table = pq.read_table(tmp_path / "o" / "data")
    assert set(table.column("sex").to_pylist()) == {"F"}
    visit0 = np.asarray(table.column("visit_index")) == 0
    ages = np.asarray(table.column("age"))[visit0]
    assert ages.min() >= 40 and ages.max() < 61


def test_ray_engine_gives_the_same_files(
    reference: Path, model_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install 'hiergen[ray]')")
    run_job(tmp_path / "ray", n=6000, model=model_dir, seed=21, shard_size=1000,
            fmt="parquet", workers=2, engine="ray")
    assert tree_digest(tmp_path / "ray") == tree_digest(reference)


def test_overwrite_removes_the_previous_writers_files(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    run_job(out, n=20, model=model_dir, fmt="meds", shard_size=10)
    assert (out / "metadata" / "codes.parquet").is_file()
    run_job(out, n=20, model=model_dir, fmt="csv", shard_size=10, overwrite=True)
    assert sorted(tree_digest(out)) == [
        "data/part-00000.csv", "data/part-00001.csv", MANIFEST_FILE,
    ]
