"""Output writers: MEDS and the flat long table (Parquet, CSV), plus plugin writers."""

from __future__ import annotations

from typing import Any

from hiergen.plugins.records import WriterSpec
from hiergen.writers.base import ShardWriter, WrittenFile
from hiergen.writers.flat import FlatWriter
from hiergen.writers.meds import MedsWriter


def get_writer_spec(name: str) -> WriterSpec:
    """The writer ``name`` from the plugin registry (built-ins always available)."""
    from hiergen.plugins.registry import get as lookup

    spec: WriterSpec = lookup("writers", name)
    return spec


def make_writer(name: str, out_dir: Any, **options: Any) -> ShardWriter:
    """Build the writer ``name`` for ``out_dir``."""
    writer: ShardWriter = get_writer_spec(name).factory(out_dir, **options)
    return writer


__all__ = [
    "FlatWriter",
    "MedsWriter",
    "ShardWriter",
    "WrittenFile",
    "get_writer_spec",
    "make_writer",
]
