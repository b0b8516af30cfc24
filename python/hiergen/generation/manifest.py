"""The job manifest: what a sharded generation job is and which shards are done.

``hiergen_manifest.json`` in the output directory holds the job parameters (n, seed, shard
size, writer and options, demographics, model hash) and, per finished shard, its seeds,
counts and the SHA-256 of its files. It is rewritten atomically after every shard, so a job
killed at any moment resumes from it. It holds no timestamps: a job's output depends only on
its parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiergen.errors import DataError
from hiergen.writers.base import WrittenFile, file_sha256, tmp_name

MANIFEST_FILE = "hiergen_manifest.json"
MANIFEST_FORMAT = "hiergen-generation-manifest"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ShardRecord:
    """One finished shard."""

    index: int
    start: int
    n_patients: int
    n_visits: int
    n_rows: int
    seed: Mapping[str, Any]
    files: tuple[WrittenFile, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.start,
            "n_patients": self.n_patients,
            "n_visits": self.n_visits,
            "n_rows": self.n_rows,
            "seed": dict(self.seed),
            "files": [f.to_dict() for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardRecord:
        return cls(
            int(data["index"]), int(data["start"]), int(data["n_patients"]),
            int(data["n_visits"]), int(data["n_rows"]), dict(data["seed"]),
            tuple(WrittenFile.from_dict(f) for f in data["files"]),
        )

    def verify(self, out_dir: Path, *, checksums: bool = True) -> str | None:
        """``None`` when every file is present and intact, else what is wrong."""
        for f in self.files:
            path = out_dir / f.path
            if not path.is_file():
                return f"{f.path} is missing"
            if path.stat().st_size != f.bytes:
                return f"{f.path} has {path.stat().st_size} bytes, manifest says {f.bytes}"
            if checksums and file_sha256(path) != f.sha256:
                return f"{f.path} does not match its SHA-256"
        return None


@dataclass
class Manifest:
    """Job parameters plus the finished shards."""

    job: dict[str, Any]
    shards: dict[int, ShardRecord] = field(default_factory=dict)
    finalized: list[WrittenFile] = field(default_factory=list)
    complete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "job": self.job,
            "complete": self.complete,
            "shards": [self.shards[i].to_dict() for i in sorted(self.shards)],
            "finalized": [f.to_dict() for f in self.finalized],
            "totals": self.totals(),
        }

    def totals(self) -> dict[str, int]:
        recs = self.shards.values()
        return {
            "shards_done": len(self.shards),
            "patients": sum(r.n_patients for r in recs),
            "visits": sum(r.n_visits for r in recs),
            "rows": sum(r.n_rows for r in recs),
        }

    def save(self, out_dir: Path) -> None:
        final = out_dir / MANIFEST_FILE
        tmp = tmp_name(final)
        tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", "utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        path = out_dir / MANIFEST_FILE
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"manifest {path}: unreadable ({exc})") from exc
        if data.get("format") != MANIFEST_FORMAT or data.get("format_version") != MANIFEST_VERSION:
            raise DataError(f"manifest {path}: not a version {MANIFEST_VERSION} hiergen manifest")
        shards = {int(s["index"]): ShardRecord.from_dict(s) for s in data.get("shards", [])}
        finalized = [WrittenFile.from_dict(f) for f in data.get("finalized", [])]
        return cls(dict(data["job"]), shards, finalized, bool(data.get("complete", False)))


def job_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable list of job parameters that differ between two manifests."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
