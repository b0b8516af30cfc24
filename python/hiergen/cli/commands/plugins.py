"""``hiergen plugins``: every plugin record with the distribution that provides it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import click

from hiergen.plugins.manager import get_plugin_manager
from hiergen.plugins.registry import KINDS, normalise_kind, plugin_records

_COLUMNS = ("name", "kind", "plugin", "distribution", "version", "description")


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[str]:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    head = "  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()
    rule = "  ".join("-" * widths[c] for c in columns)
    body = ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return [head, rule, *body]


def collect(kinds: list[str] | None = None) -> dict[str, Any]:
    """The listing as plain data: records, registered plugins and load failures."""
    pm = get_plugin_manager()
    records = sorted(plugin_records(kinds), key=lambda r: (r.kind, r.name, r.plugin))
    clashes = Counter((r.kind, r.name) for r in records)
    plugins = []
    for name, _plugin in sorted(pm.list_name_plugin()):
        info = pm.plugin_info(name)
        plugins.append(
            {
                "name": name,
                "distribution": info.distribution,
                "version": info.version,
                "builtin": info.builtin,
                "module": info.module,
            }
        )
    return {
        "records": [
            {**r.to_dict(), "duplicate": clashes[(r.kind, r.name)] > 1} for r in records
        ],
        "plugins": plugins,
        "failed": [
            {"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error}
            for f in pm.failures
        ],
    }


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(sorted(KINDS) + sorted(k[:-1] for k in KINDS), case_sensitive=False),
    help="Only records of this kind (repeatable).",
)
def command(as_json: bool, kinds: tuple[str, ...]) -> None:
    """List installed plugin records: name, kind, providing plugin, distribution and version."""
    data = collect([normalise_kind(k) for k in kinds] if kinds else None)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [
        {
            "name": r["name"] + (" (duplicate!)" if r["duplicate"] else ""),
            "kind": r["kind"],
            "plugin": r["plugin"],
            "distribution": r["distribution"] or "-",
            "version": r["version"] or "-",
            "description": r["description"],
        }
        for r in data["records"]
    ]
    for line in _table(rows, _COLUMNS):
        click.echo(line)
    if data["failed"]:
        click.echo("")
        click.echo("Plugins that failed to load:")
        for f in data["failed"]:
            dist = f" ({f['distribution']} {f['version']})" if f["distribution"] else ""
            click.echo(f"  {f['name']}{dist}: {f['error']}")
