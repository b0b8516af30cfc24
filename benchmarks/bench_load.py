"""Load time and peak memory: NHDS 2010, and a generated plain table of 10M diagnosis rows.

Run: ``python benchmarks/bench_load.py [--nhds PATH] [--rows 10000000] [--repeat 3]
[--table-format parquet,csv] [--skip-nhds]``.

Every measured load runs in a fresh child process, so its peak RSS (``ru_maxrss``) is the peak
of that load alone. The baseline, measured in the same run on the same file, is reading the raw
input with no hiergen work at all (bz2 decompression for NHDS; ``pyarrow`` reading the table
with default types for the generated table): the loader's cost shows as ratios against it.
Peak figures are reported above the RSS of the child after imports and the ICD-9 code lists.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_NHDS = Path(__file__).resolve().parents[1].parent / "shared/data/nhds2010/NHDS10.PU.txt.bz2"


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``, which a
    child inherits from the parent that forked it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- the child: one measured load ---------------------------------------------------------
def child(kind: str, path: Path, fmt: str) -> dict[str, Any]:
    """Load ``path`` once (``kind`` = ``hiergen`` or ``raw``); figures as a dict."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from hiergen import icd9
    from hiergen.loaders import load

    icd9.v32_codes(), icd9.v32_parents(), icd9.icd10cm_codes()  # warm the code lists
    rss0 = peak_rss_mb()
    t = time.perf_counter()
    out: dict[str, Any] = {}
    if kind == "raw":
        if path.suffix == ".bz2":
            import bz2

            out["bytes"] = len(bz2.decompress(path.read_bytes()))
        elif path.suffix == ".parquet":
            out["bytes"] = pq.read_table(path).nbytes
        else:
            out["bytes"] = pacsv.read_csv(path).nbytes
    else:
        cohort, report = load(path, format=fmt)
        out.update(rows=cohort.n_rows, visits=cohort.n_visits, patients=cohort.n_patients,
                   cohort_bytes=cohort.nbytes, rows_read=report.rows_read,
                   dropped=sum(report.dropped.values()))
    out["seconds"] = time.perf_counter() - t
    out["rss_start_mb"] = rss0
    out["peak_mb"] = peak_rss_mb()
    return out


def run_child(kind: str, path: Path, fmt: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, str(path), fmt]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"child {' '.join(cmd)} failed:\n{res.stderr}")
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


def measure(kind: str, path: Path, fmt: str, repeat: int) -> dict[str, Any]:
    """Median seconds and median peak over ``repeat`` fresh children."""
    runs = [run_child(kind, path, fmt) for _ in range(repeat)]
    out = dict(runs[0])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_mb"] = statistics.median(r["peak_mb"] for r in runs)
    out["rss_start_mb"] = statistics.median(r["rss_start_mb"] for r in runs)
    out["extra_mb"] = out["peak_mb"] - out["rss_start_mb"]
    return out


# --- the generated table --------------------------------------------------------------------
def write_table(directory: Path, n_rows: int, formats: list[str], seed: int = 0) -> list[Path]:
    """A long table of ``n_rows`` rows like a MIMIC extract: integer patient and visit ids,
    undotted v32 codes drawn Zipf-like (distinct within a visit), integer age, ``M``/``F``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from hiergen import icd9

    rng = np.random.default_rng(seed)
    vocab = np.array(sorted(c.replace(".", "") for c in icd9.v32_codes()), dtype=object)
    rng.shuffle(vocab)
    weights = 1.0 / np.arange(1, vocab.size + 1) ** 1.1
    weights /= weights.sum()
    n_visits = n_rows // 7
    lengths = np.full(n_visits, 7, dtype=np.int64)
    lengths[: n_rows - 7 * n_visits] += 1
    visits_per_patient = rng.integers(1, 3, size=n_visits)
    visit_patient = np.repeat(np.arange(n_visits), visits_per_patient)[:n_visits]
    row_visit = np.repeat(np.arange(n_visits, dtype=np.int64), lengths)
    codes = rng.choice(vocab.size, size=n_rows, p=weights).astype(np.int32)
    sex = np.where(rng.random(visit_patient[-1] + 1) < 0.5, "M", "F")
    age = rng.integers(0, 91, size=visit_patient[-1] + 1)
    table = pa.table({
        "patient_id": pa.array(visit_patient[row_visit] + 10_000),
        "visit_id": pa.array(row_visit + 100_000),
        "code": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(vocab.tolist())),
        "age": pa.array(age[visit_patient[row_visit]]),
        "sex": pa.array(sex[visit_patient[row_visit]]),
    })
    paths = []
    for fmt in formats:
        if fmt == "parquet":
            p = directory / "long.parquet"
            pq.write_table(table, p)
        else:
            p = directory / "long.csv"
            pacsv.write_csv(table.cast(table.schema.set(2, pa.field("code", pa.string()))), p)
        paths.append(p)
    return paths


def report(label: str, raw: dict[str, Any], mine: dict[str, Any]) -> None:
    print(f"{label}: {mine['rows_read']:,} rows read, {mine['rows']:,} kept, "
          f"{mine['visits']:,} visits, {mine['patients']:,} patients")
    print(f"  baseline (raw read, no hiergen work): {raw['seconds']:.2f} s, "
          f"+{raw['extra_mb']:.0f} MB peak ({raw['bytes'] / 1e6:.0f} MB of decoded input)")
    print(f"  hiergen load: {mine['seconds']:.2f} s = {mine['seconds'] / raw['seconds']:.2f}x "
          f"baseline; {mine['rows_read'] / mine['seconds'] / 1e6:.2f} M rows/s")
    print(f"  peak RSS: +{mine['extra_mb']:.0f} MB over {mine['rss_start_mb']:.0f} MB after "
          f"imports = {mine['extra_mb'] / max(raw['extra_mb'], 1):.2f}x baseline peak, "
          f"{mine['extra_mb'] * 1e6 / mine['rows_read']:.1f} bytes/row")
    print(f"  cohort: {mine['cohort_bytes'] / 1e6:.1f} MB "
          f"({mine['cohort_bytes'] / max(mine['rows'], 1):.2f} bytes/row); peak = "
          f"{mine['extra_mb'] * 1e6 / mine['cohort_bytes']:.1f}x the cohort")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nhds", type=Path, default=DEFAULT_NHDS)
    ap.add_argument("--skip-nhds", action="store_true")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--table-format", default="parquet,csv",
                    help="comma-separated: parquet, csv (empty: no generated table)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "FORMAT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path, fmt = args.child
        print(json.dumps(child(kind, Path(path), fmt)))
        return
    if args.skip_nhds:
        pass
    elif args.nhds.exists():
        report("NHDS 2010", measure("raw", args.nhds, "nhds", args.repeat),
               measure("hiergen", args.nhds, "nhds", args.repeat))
    else:
        print(f"NHDS file {args.nhds} absent: skipped")
    formats = [f for f in args.table_format.split(",") if f]
    if not formats or args.rows <= 0:
        return
    with tempfile.TemporaryDirectory(prefix="hiergen-bench-") as tmp:
        t = time.perf_counter()
        paths = write_table(Path(tmp), args.rows, formats)
        sizes = ", ".join(f"{p.suffix[1:]} {p.stat().st_size / 1e6:.0f} MB" for p in paths)
        print(f"generated table: {args.rows:,} rows ({sizes}) in {time.perf_counter() - t:.1f} s")
        for p in paths:
            report(f"table {p.name}", measure("raw", p, "table", args.repeat),
                   measure("hiergen", p, "table", args.repeat))


if __name__ == "__main__":
    main()
