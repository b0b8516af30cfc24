"""File helpers shared by the loaders: opening, CSV reading with clear errors."""

from __future__ import annotations

import bz2
import gzip
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hiergen.demographics import FEMALE, MALE
from hiergen.errors import DataError
from hiergen.loaders._assemble import SEX_MISSING, SEX_UNKNOWN

_DELIMITERS = (",", ";", "\t", "|")


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{what}: file {path} does not exist")
    if path.is_dir():
        raise DataError(f"{what}: {path} is a directory, expected a file")
    return path


def find_table(directory: Path, stem: str, what: str) -> Path:
    """``directory/stem.csv`` or ``.csv.gz`` (also upper-case stems, as in full MIMIC-III)."""
    if not directory.is_dir():
        raise DataError(f"{what}: {directory} is not a directory")
    for name in (stem, stem.upper(), stem.lower()):
        for ext in (".csv", ".csv.gz"):
            p = directory / f"{name}{ext}"
            if p.exists():
                return p
    raise DataError(f"{what}: {directory} has no {stem}.csv or {stem}.csv.gz")


def read_bytes(path: Path) -> bytes:
    """Whole file, decompressing ``.bz2`` and ``.gz``."""
    if path.suffix == ".bz2":
        with bz2.open(path, "rb") as f:
            return f.read()
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def _head_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return f.readline().decode("utf-8", "replace").rstrip("\r\n")


def sniff_delimiter(path: Path) -> str:
    head = _head_line(path)
    counts = {d: head.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def check_csv_header(
    path: Path, required: Sequence[str], *, delimiter: str | None = ",", what: str = "table"
) -> tuple[str, list[str]]:
    """(delimiter, column names as written) of a CSV whose header has every ``required``
    column (case-insensitive); errors name the file, the missing columns and, where the header
    looks delimited by another character, that character."""
    require_file(path, what)
    if path.stat().st_size == 0:
        raise DataError(f"{what}: file {path} is empty")
    delim = sniff_delimiter(path) if delimiter is None else delimiter
    head = _head_line(path)
    if not head.strip():
        raise DataError(f"{what}: file {path} has no header line")
    names = [c.strip().strip('"').lower() for c in head.split(delim)]
    missing = [c for c in required if c.lower() not in names]
    if missing:
        other = [d for d in _DELIMITERS if d != delim and d in head]
        hint = f"; the header looks {other[0]!r}-delimited" if other else ""
        raise DataError(
            f"{what}: file {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(names[:12])}){hint}"
        )
    return delim, _raw_names(head, delim)


def read_csv(
    path: Path,
    required: Sequence[str],
    *,
    string_columns: Iterable[str] = (),
    delimiter: str | None = ",",
    what: str = "table",
) -> pa.Table:
    """Read a CSV with lower-cased column names; every column in ``required`` must exist.

    ``string_columns`` are read as strings (codes such as ``0389`` keep their zeros).
    ``delimiter=None`` sniffs it from the header. Errors name the file and the columns.
    """
    delim, raw = check_csv_header(path, required, delimiter=delimiter, what=what)
    wanted = {c.lower() for c in string_columns}
    types = {orig: pa.string() for orig in raw if orig.lower() in wanted}
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delim),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(f"{what}: cannot parse {path}: {exc}") from exc
    table = table.rename_columns([c.lower() for c in table.column_names])
    if table.num_rows == 0:
        raise DataError(f"{what}: file {path} has a header but no rows")
    return table


def _raw_names(head: str, delim: str) -> list[str]:
    return [c.strip().strip('"') for c in head.split(delim)]


def read_parquet(path: Path, required: Sequence[str], *, what: str = "table") -> pa.Table:
    require_file(path, what)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{what}: cannot read Parquet file {path}: {exc}") from exc
    table = table.rename_columns([c.lower() for c in table.column_names])
    missing = [c for c in required if c.lower() not in table.column_names]
    if missing:
        raise DataError(
            f"{what}: file {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(table.column_names[:12])})"
        )
    if table.num_rows == 0:
        raise DataError(f"{what}: file {path} has no rows")
    return table


def as_strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) else pc.cast(
        arr, pa.string()
    )


_SEX_VALUES = {
    "m": MALE, "male": MALE, "man": MALE, "1": MALE,
    "f": FEMALE, "female": FEMALE, "woman": FEMALE, "2": FEMALE,
}


def parse_sex_column(
    col: pa.ChunkedArray | pa.Array, *, mapping: dict[str, int] | None = None
) -> npt.NDArray[np.int8]:
    """Sex codes per row: 0/1, :data:`SEX_MISSING` for nulls/blanks, :data:`SEX_UNKNOWN` else."""
    table = {k.lower(): v for k, v in (mapping or _SEX_VALUES).items()}
    arr = pc.utf8_lower(pc.utf8_trim_whitespace(as_strings(col)))
    enc = pc.dictionary_encode(arr)
    values = enc.dictionary.to_pylist()
    lut = np.array(
        [SEX_MISSING if v in ("", None) else table.get(v, SEX_UNKNOWN) for v in values]
        + [SEX_MISSING],
        dtype=np.int8,
    )
    idx = enc.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
    return lut[idx]


def parse_numbers(
    col: pa.ChunkedArray | pa.Array,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(float per row with NaN for missing or bad, mask of present-but-non-numeric values)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        out = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        return out, np.zeros(out.size, dtype=bool)
    s = pc.utf8_trim_whitespace(as_strings(arr))
    enc = pc.dictionary_encode(s)
    vals: list[float] = []
    bad: list[bool] = []
    for v in enc.dictionary.to_pylist():
        try:
            vals.append(float(v) if v not in ("", None) else np.nan)
            bad.append(False)
        except ValueError:
            vals.append(np.nan)
            bad.append(True)
    lut = np.array([*vals, np.nan], dtype=np.float64)
    badlut = np.array([*bad, False], dtype=bool)
    idx = enc.indices.fill_null(len(vals)).to_numpy(zero_copy_only=False)
    return lut[idx], badlut[idx]


def parse_times(
    col: pa.ChunkedArray | pa.Array, *, fmt: str | None = None
) -> npt.NDArray[np.datetime64]:
    """``datetime64[s]`` per row (NaT for nulls); strings are parsed as ISO or with ``fmt``."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return arr.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False).astype("datetime64[s]")
    s = as_strings(arr)
    if fmt is not None:
        ts = pc.strptime(s, format=fmt, unit="s", error_is_null=True)
    else:
        ts = s.cast(pa.timestamp("s"))
    return ts.to_numpy(zero_copy_only=False).astype("datetime64[s]")


def years_between(
    start: npt.NDArray[np.datetime64], end: npt.NDArray[np.datetime64]
) -> npt.NDArray[np.float64]:
    """Years from ``start`` to ``end`` (365.2425-day years), NaN where either is NaT."""
    secs = (end.astype("datetime64[s]") - start.astype("datetime64[s]")).astype("timedelta64[s]")
    out = secs.astype(np.float64) / (365.2425 * 86400.0)
    out[np.isnat(start) | np.isnat(end)] = np.nan
    return out
