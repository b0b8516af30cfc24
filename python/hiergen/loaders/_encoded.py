"""Read table columns in batches as dictionary codes: int32 ids per row plus the distinct values.

A long table of N rows becomes 4 bytes per row per column (plus the distinct values), however
wide its strings or integers are; the raw columns of one batch at a time are all that is ever
decoded. Parsing (numbers, dates, sex values) then runs on the distinct values only and reaches
the rows through lookup tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hiergen.errors import DataError
from hiergen.loaders._assemble import rank_values
from hiergen.loaders._io import check_csv_header, require_file

#: Rows per batch when streaming (CSV blocks are sized in bytes, see ``_CSV_BLOCK``).
BATCH_ROWS = 1 << 20
_CSV_BLOCK = 32 << 20
_STRING_DICT = pa.dictionary(pa.int32(), pa.string())


@dataclass
class EncodedColumn:
    """One column as ``indices`` (per row, -1 for null; the narrowest signed integer type that
    holds them: int8 for a sex column, int16 for codes) into ``dictionary``."""

    indices: npt.NDArray[np.signedinteger[Any]]
    dictionary: pa.Array

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, row: int) -> Any:
        """The value of one row (``None`` for null), for error messages and examples."""
        j = int(self.indices[row])
        return None if j < 0 else self.dictionary[j].as_py()

    def values(self) -> npt.NDArray[Any]:
        """The distinct values as a numpy array (objects for strings)."""
        return np.asarray(self.dictionary.to_numpy(zero_copy_only=False))

    def lookup(self, table: npt.NDArray[Any], missing: Any) -> npt.NDArray[Any]:
        """Per-row ``table[value]``, ``missing`` for nulls (``table`` has one entry per value)."""
        full = np.append(table, np.asarray([missing], dtype=table.dtype))
        return full[self.indices]

    def sort_in_place(self) -> npt.NDArray[np.signedinteger[Any]]:
        """Renumber so that the dictionary is sorted (ids are then ranks; -1 stays for null);
        the indices are rewritten in place, so this costs no per-row memory. Returns them."""
        order = pc.sort_indices(self.dictionary).to_numpy()  # no Python objects per value
        if not (order.size and (np.diff(order) != 1).any()):
            return self.indices
        rank = np.empty(order.size + 1, dtype=self.indices.dtype)
        rank[order] = np.arange(order.size, dtype=self.indices.dtype)
        rank[-1] = -1
        for start in range(0, self.indices.size, _REMAP_ROWS):  # in place, in slices
            part = self.indices[start : start + _REMAP_ROWS]
            part[...] = rank[part]
        self.dictionary = self.dictionary.take(pa.array(order))
        return self.indices


_REMAP_ROWS = 1 << 20


@dataclass
class _PlainChunk:
    """A batch of numbers or times as numpy values plus a validity mask (None: all valid)."""

    values: npt.NDArray[Any]
    valid: npt.NDArray[np.bool_] | None


def _encode(arr: pa.Array | pa.ChunkedArray) -> pa.Array | _PlainChunk:
    """A batch's column as a dictionary array, or (numbers, times) as a :class:`_PlainChunk`
    with integers narrowed to int32 where the batch fits (hashing integer ids with arrow is
    slow and erratic; they are ranked by sorting in :func:`_rank_plain` instead)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        if arr.type.index_type != pa.int32():
            arr = arr.cast(pa.dictionary(pa.int32(), arr.type.value_type))
        return arr
    t = arr.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t)):
        return pc.dictionary_encode(arr)
    present = arr.is_valid()
    if pa.types.is_floating(t):  # NaN counts as missing
        present = pc.and_(present, pc.invert(pc.fill_null(pc.is_nan(arr), False)))
    valid: npt.NDArray[np.bool_] | None = present.to_numpy(zero_copy_only=False)
    if valid is not None and valid.all():
        valid = None
    if pa.types.is_integer(t):
        filled = arr.fill_null(0) if arr.null_count else arr
        mm = pc.min_max(filled).as_py()
        lo, hi = mm["min"] or 0, mm["max"] or 0
        for bits, arrow_type in ((8, pa.int8()), (16, pa.int16()), (32, pa.int32())):
            if -(2 ** (bits - 1)) <= lo and hi < 2 ** (bits - 1):
                filled = filled.cast(arrow_type)
                break
        return _PlainChunk(filled.to_numpy(zero_copy_only=False), valid)
    if pa.types.is_temporal(t):
        values = arr.cast(pa.timestamp("s")) if not pa.types.is_timestamp(t) else arr
        return _PlainChunk(values.to_numpy(zero_copy_only=False), valid)
    return _PlainChunk(arr.fill_null(0).to_numpy(zero_copy_only=False), valid)


def _rank_plain(chunks: list[_PlainChunk], n_rows: int) -> EncodedColumn:
    """Numbers or times: ranks among the sorted distinct values (the dictionary)."""
    values = np.concatenate([c.values for c in chunks])
    valid = None
    if any(c.valid is not None for c in chunks):
        valid = np.concatenate(
            [c.valid if c.valid is not None else np.ones(c.values.size, bool) for c in chunks]
        )
        values = values[valid]
    chunks.clear()
    ranks, distinct = rank_values(values)
    del values
    if valid is None:
        indices = ranks.astype(np.int32, copy=False)
    else:
        indices = np.full(n_rows, -1, dtype=np.int32)
        indices[valid] = ranks
    if distinct.dtype.kind == "i":
        distinct = distinct.astype(np.int64)
    return EncodedColumn(indices, pa.array(distinct))


def _combine(chunks: list[Any], n_rows: int) -> EncodedColumn:
    """One :class:`EncodedColumn` from per-batch dictionary arrays (dictionaries unified)."""
    if chunks and isinstance(chunks[0], _PlainChunk):
        return _rank_plain(chunks, n_rows)
    value_types = {c.type.value_type for c in chunks}
    if len(value_types) > 1:  # e.g. int64 in one Parquet row group, null in another
        target = next(t for t in value_types if not pa.types.is_null(t))
        chunks = [c.cast(pa.dictionary(pa.int32(), target)) for c in chunks]
    unified = pa.chunked_array(chunks).unify_dictionaries()
    chunks.clear()
    indices = np.empty(n_rows, dtype=np.int32)
    pos = 0
    for chunk in unified.chunks:
        idx = chunk.indices
        if idx.null_count:
            idx = idx.fill_null(-1)
        indices[pos : pos + len(chunk)] = idx.to_numpy(zero_copy_only=False)
        pos += len(chunk)
    dictionary = unified.chunk(0).dictionary if unified.num_chunks else pa.array([], pa.string())
    return EncodedColumn(indices, dictionary)


def narrowest_index_type(n_values: int) -> type[np.signedinteger[Any]]:
    """The smallest signed integer type holding ids ``-1..n_values-1``."""
    for t in (np.int8, np.int16, np.int32):
        if n_values <= np.iinfo(t).max:
            return t
    return np.int64


def _finish(
    columns: Sequence[str], chunks: dict[str, list[Any]], n_rows: int
) -> dict[str, EncodedColumn]:
    out: dict[str, EncodedColumn] = {}
    for name in columns:
        col = _combine(chunks.pop(name), n_rows)
        col.indices = col.indices.astype(narrowest_index_type(len(col.dictionary)), copy=False)
        out[name] = col
    # hand the decoded batches' memory back to the OS before the per-row work starts
    pa.default_memory_pool().release_unused()
    return out


def read_encoded_csv(
    path: Path, required: Sequence[str], *, delimiter: str | None = ",", what: str = "table"
) -> dict[str, EncodedColumn]:
    """Stream the ``required`` columns (lower-case names) of a CSV as dictionary codes.

    Every value is read as a string (codes keep leading zeros, a stray word in an age column
    does not break type inference); errors name the file and the columns.
    """
    delim, raw = check_csv_header(path, required, delimiter=delimiter, what=what)
    wanted = {c.lower() for c in required}
    pick = {low: orig for orig, low in ((r, r.lower()) for r in raw) if low in wanted}
    chunks: dict[str, list[Any]] = {c: [] for c in pick}
    n_rows = 0
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=delim),
            convert_options=pacsv.ConvertOptions(
                column_types={orig: _STRING_DICT for orig in pick.values()},
                include_columns=list(pick.values()),
                strings_can_be_null=True,
            ),
        )
        for batch in reader:
            for low, orig in pick.items():
                chunks[low].append(_encode(batch.column(orig)))
            n_rows += batch.num_rows
    except pa.ArrowInvalid as exc:
        raise DataError(f"{what}: cannot parse {path}: {exc}") from exc
    if n_rows == 0:
        raise DataError(f"{what}: file {path} has a header but no rows")
    return _finish(list(pick), chunks, n_rows)


def read_encoded_parquet(
    path: Path, required: Sequence[str], *, what: str = "table"
) -> dict[str, EncodedColumn]:
    """Stream the ``required`` columns (lower-case names) of a Parquet file as dictionary codes."""
    require_file(path, what)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{what}: cannot read Parquet file {path}: {exc}") from exc
    names = pf.schema_arrow.names
    lower = {n.lower(): n for n in names}
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise DataError(
            f"{what}: file {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(n.lower() for n in names[:12])})"
        )
    if pf.metadata.num_rows == 0:
        raise DataError(f"{what}: file {path} has no rows")
    pick = {c.lower(): lower[c.lower()] for c in required}
    chunks: dict[str, list[Any]] = {c: [] for c in pick}
    n_rows = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(pick.values())):
            for low, orig in pick.items():
                chunks[low].append(_encode(batch.column(orig)))
            n_rows += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{what}: cannot read Parquet file {path}: {exc}") from exc
    return _finish(list(pick), chunks, n_rows)
