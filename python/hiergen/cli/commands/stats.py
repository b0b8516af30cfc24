"""``hiergen stats DATA --format NAME``: load a data set and print its sparsity table."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from hiergen.hierarchy import Hierarchy


def _parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        low = value.lower()
        out[key.replace("-", "_")] = (
            True if low == "true" else False if low == "false" else None if low == "none" else value
        )
    return out


@click.command(name="stats")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", required=True,
              help="Loader name: nhds, mimic3, mimic4, meds, table, synpuf.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option, e.g. -o code=icd9 -o visit=hadm_id (repeatable).")
@click.option("--strict", is_flag=True, help="Fail on any dropped row instead of reporting it.")
@click.option("--flat", is_flag=True, help="Use the flat hierarchy (each code its own category).")
@click.option("--json", "as_json", is_flag=True, help="Print the table and load report as JSON.")
def command(
    data: Path, fmt: str, options: tuple[str, ...], strict: bool, flat: bool, as_json: bool
) -> None:
    """Sparsity of code pairs and category pairs in DATA (unordered pairs, no self-pairs)."""
    from hiergen.loaders import load
    from hiergen.stats import format_sparsity, sparsity

    t0 = time.perf_counter()
    cohort, report = load(data, format=fmt, strict=strict, **_parse_options(options))
    t_load = time.perf_counter() - t0
    hierarchy = Hierarchy.flat(cohort.vocab) if flat else Hierarchy.from_codes(cohort.vocab)
    table = sparsity(cohort, hierarchy)
    if as_json:
        click.echo(json.dumps({"sparsity": table.to_dict(), "load": report.to_dict(),
                               "load_seconds": round(t_load, 3)}, indent=2))
        return
    click.echo(report.summary(), err=True)
    click.echo(format_sparsity(table))
