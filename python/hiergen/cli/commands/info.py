"""``hiergen info [MODEL_DIR]``: what a trained model holds (no patient rows are read)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(name="info")
@click.argument("model_dir", required=False, type=click.Path(exists=True, file_okay=False,
                                                              path_type=Path))
@click.option("--category", "categories", multiple=True, metavar="CAT",
              help="List the context tables of this category (e.g. 250), best first; "
                   "repeatable.")
@click.option("--context", "contexts", multiple=True, metavar="CODE",
              help="List the context tables whose context is this code (e.g. 585.6), best "
                   "first; repeatable.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Tables listed per --category or --context.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def command(model_dir: Path | None, categories: tuple[str, ...], contexts: tuple[str, ...],
            top: int, as_json: bool) -> None:
    """Describe the model in MODEL_DIR (default: the model shipped with hiergen): its training
    data in counts, its Stage 1 and Stage 2, and the context tables of Stage 2.

    \b
    Example:
      hiergen info --category 250 --context 585.6
    """
    from hiergen.model import HiergenModel
    from hiergen.model_info import context_rows, describe, format_rows, format_summary

    model = HiergenModel.load(model_dir)
    info = describe(model)
    listings: list[tuple[str, str, list]] = []
    for by, keys in (("category", categories), ("context", contexts)):
        for key in keys:
            try:
                rows = (context_rows(model, category=key, top=top) if by == "category"
                        else context_rows(model, context=key, top=top))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=f"--{by}") from None
            listings.append((by, key, rows))
    if as_json:
        info["tables"] = [{"by": by, "key": key, "rows": rows} for by, key, rows in listings]
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(format_summary(info))
    for by, key, rows in listings:
        what = f"of category {key}" if by == "category" else f"with context {key}"
        click.echo(f"\ncontext tables {what} (best score first, at most {top}):")
        click.echo(format_rows(rows))
