"""What every output writer shares: atomic files, checksums, deterministic Parquet.

A writer is made by ``factory(out_dir, model=..., **options)`` (see
:class:`hiergen.plugins.records.WriterSpec`) and offers:

``write_shard(index, batch) -> list[WrittenFile]``
    write the shard's files under temporary names, then rename them into place;
``shard_files(index) -> list[str]``
    the paths (relative to ``out_dir``) that shard ``index`` produces;
``finalize(manifest) -> list[WrittenFile]``
    write the job-level files (metadata) once every shard is done;
``owned_paths() -> list[str]``
    top-level entries of ``out_dir`` the writer creates (removed by ``--overwrite``).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

    from hiergen.generation.patients import GeneratedPatients

#: Rows per Parquet row group: fixed so that files depend only on their rows.
ROW_GROUP_ROWS = 1 << 20
#: Marker inside temporary file names (``.NAME.tmp-PID-RANDOM``).
TMP_MARKER = ".tmp-"


@dataclass(frozen=True)
class WrittenFile:
    """A file a writer produced: path relative to the output directory, SHA-256, size."""

    path: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WrittenFile:
        return cls(str(data["path"]), str(data["sha256"]), int(data["bytes"]))


@runtime_checkable
class ShardWriter(Protocol):
    """The interface of an output writer (see the module docstring)."""

    out_dir: Path

    def write_shard(self, index: int, batch: GeneratedPatients) -> list[WrittenFile]: ...

    def shard_files(self, index: int) -> list[str]: ...

    def finalize(self, manifest: Mapping[str, Any]) -> list[WrittenFile]: ...

    def owned_paths(self) -> list[str]: ...


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tmp_name(final: Path) -> Path:
    """A unique temporary sibling of ``final`` (hidden, recognisable by :data:`TMP_MARKER`)."""
    return final.with_name(f".{final.name}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def is_tmp_name(name: str) -> bool:
    return name.startswith(".") and TMP_MARKER in name


def write_atomic(out_dir: Path, relative: str, write: Callable[[Path], None]) -> WrittenFile:
    """Call ``write(tmp_path)``, checksum the result, fsync it and rename it to ``relative``."""
    final = out_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(final)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        sha = file_sha256(tmp)
        size = tmp.stat().st_size
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return WrittenFile(relative, sha, size)


def write_parquet(table: pa.Table, path: Path, *, store_schema: bool = True) -> None:
    """Deterministic Parquet: fixed row groups, zstd, statistics, no timestamps."""
    import pyarrow.parquet as pq

    pq.write_table(
        table,
        path,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        compression_level=1,
        use_dictionary=True,
        write_statistics=True,
        store_schema=store_schema,
    )


def remove_tmp_files(directory: Path) -> int:
    """Delete temporary files left under ``directory`` by a killed run; return how many."""
    removed = 0
    if not directory.is_dir():
        return 0
    for path in directory.rglob(f".*{TMP_MARKER}*"):
        if path.is_file() and is_tmp_name(path.name):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
