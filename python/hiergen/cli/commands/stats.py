"""``hiergen stats DATA --format NAME``: load a data set and print its sparsity table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from hiergen.hierarchy import Hierarchy


def _parse_options(fmt: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """Typed loader options (see :mod:`hiergen.loaders.options`); bad ones are usage errors."""
    from hiergen.loaders import LOADERS
    from hiergen.loaders.options import parse_loader_options

    if fmt not in LOADERS:
        raise click.BadParameter(
            f"unknown loader {fmt!r}; available: {', '.join(sorted(LOADERS))}",
            param_hint="--format",
        )
    try:
        return parse_loader_options(LOADERS[fmt][0], pairs, loader=fmt)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--option") from None


@click.command(name="stats")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", required=True,
              help="Loader name: nhds, mimic3, mimic4, meds, table, synpuf.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option, typed by the loader: -o visit=none -o time=admit_date "
                   "-o sex_values=M:0,F:1 (or JSON: -o 'sex_values={\"m\": 0}'); repeatable.")
@click.option("--strict", is_flag=True, help="Fail on any dropped row instead of reporting it.")
@click.option("--flat", is_flag=True, help="Use the flat hierarchy (each code its own category).")
@click.option("--json", "as_json", is_flag=True, help="Print the table and load report as JSON.")
def command(
    data: Path, fmt: str, options: tuple[str, ...], strict: bool, flat: bool, as_json: bool
) -> None:
    """Sparsity of code pairs and category pairs in DATA (unordered pairs, no self-pairs)."""
    from hiergen.loaders import load
    from hiergen.stats import format_sparsity, sparsity

    options_ = _parse_options(fmt, options)
    t0 = time.perf_counter()
    cohort, report = load(data, format=fmt, strict=strict, **options_)
    t_load = time.perf_counter() - t0
    hierarchy = Hierarchy.flat(cohort.vocab) if flat else Hierarchy.from_codes(cohort.vocab)
    table = sparsity(cohort, hierarchy)
    if as_json:
        click.echo(json.dumps({"sparsity": table.to_dict(), "load": report.to_dict(),
                               "load_seconds": round(t_load, 3)}, indent=2))
        return
    click.echo(report.summary(), err=True)
    click.echo(format_sparsity(table))
