"""The flat long table, one row per generated code, as Parquet or CSV files.

Columns: ``patient_id`` (int64), ``visit_index`` (int32, 0 = first visit), ``age`` (float32,
years at the visit), ``sex`` (``M``/``F``), ``category`` and ``code`` (dotted ICD-9-CM).
Shard ``i`` is ``data/part-<i>.parquet`` (or ``.csv``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiergen.writers.base import WrittenFile, write_atomic, write_parquet

if TYPE_CHECKING:
    from hiergen.generation.patients import GeneratedPatients

DATA_DIR = "data"


class FlatWriter:
    """Writes the flat long table (``fmt`` ``"parquet"`` or ``"csv"``)."""

    def __init__(self, out_dir: str | Path, *, fmt: str = "parquet", model: Any = None) -> None:
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"fmt: expected 'parquet' or 'csv', got {fmt!r}")
        self.out_dir = Path(out_dir)
        self.fmt = fmt

    def shard_files(self, index: int) -> list[str]:
        return [f"{DATA_DIR}/part-{index:05d}.{self.fmt}"]

    def owned_paths(self) -> list[str]:
        return [DATA_DIR]

    def write_shard(self, index: int, batch: GeneratedPatients) -> list[WrittenFile]:
        table = batch.to_arrow()
        if self.fmt == "parquet":
            return [write_atomic(self.out_dir, self.shard_files(index)[0],
                                 lambda p: write_parquet(table, p))]
        import pyarrow as pa
        import pyarrow.csv as pacsv

        plain = pa.table(
            {
                name: (col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col)
                for name, col in zip(table.column_names, table.columns, strict=True)
            }
        )

        def _csv(path: Path) -> None:
            pacsv.write_csv(plain, path, pacsv.WriteOptions(quoting_style="needed"))

        return [write_atomic(self.out_dir, self.shard_files(index)[0], _csv)]

    def finalize(self, manifest: Mapping[str, Any]) -> list[WrittenFile]:
        return []


def parquet_writer(out_dir: str | Path, **options: Any) -> FlatWriter:
    return FlatWriter(out_dir, fmt="parquet", **options)


def csv_writer(out_dir: str | Path, **options: Any) -> FlatWriter:
    return FlatWriter(out_dir, fmt="csv", **options)
