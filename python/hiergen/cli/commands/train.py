"""``hiergen train``: fit a model on real data and write a model directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from hiergen.cli.commands._options import parse_pairs, read_config


@click.command("train")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("-f", "--format", "fmt", help="Loader name: nhds, mimic3, mimic4, meds, table, ...")
@click.option("-g", "--generator", help="Stage-1 generator name (default: markov).")
@click.option("-w", "--weighting",
              help="Stage-2 weighting strategy name (default: context, each category's codes "
                   "conditioned on the codes already drawn in the visit; frequency: the "
                   "category's own code frequencies).")
@click.option(
    "-o", "--output", "out", required=True, type=click.Path(path_type=Path),
    help="Model directory to write.",
)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Generator parameter (repeatable), e.g. -p order=1.")
@click.option("--weighting-param", "wparams", multiple=True, metavar="KEY=VALUE",
              help="Weighting parameter (repeatable), e.g. --weighting-param prior=0.5.")
@click.option("--loader-option", "loptions", multiple=True, metavar="KEY=VALUE",
              help="Loader option (repeatable).")
@click.option("-c", "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON or TOML file with format, generator, weighting, generator_params, "
                   "weighting_params, loader_options, seed, own_code_min_visits (options on "
                   "the command line win).")
@click.option("--seed", type=click.IntRange(min=0), help="Training seed (default 0).")
@click.option("--own-code-min-visits", "own_min", type=click.IntRange(min=0),
              help="Codes held by at least this many training visits become categories of "
                   "their own, so that Stage 1 models them directly (default 0: off; the "
                   "shipped NHDS model uses 1000, about 0.8% of its visits).")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory.")
def command(
    data: Path,
    fmt: str | None,
    generator: str | None,
    weighting: str | None,
    out: Path,
    params: tuple[str, ...],
    wparams: tuple[str, ...],
    loptions: tuple[str, ...],
    config: Path | None,
    seed: int | None,
    own_min: int | None,
    overwrite: bool,
) -> None:
    """Train a two-stage model on DATA and save it to a model directory.

    \b
    Example:
      hiergen train NHDS10.PU.txt.bz2 --format nhds --generator markov \\
          --weighting context -o my_model/
    """
    from hiergen.train import DEFAULT_WEIGHTING, train_from_path

    cfg = read_config(config)
    fmt = fmt or cfg.get("format")
    if not fmt:
        raise click.UsageError("--format is required (or `format` in --config)")
    gen_params: dict[str, Any] = {**cfg.get("generator_params", {}),
                                  **parse_pairs(params, "--param")}
    w_params: dict[str, Any] = {**cfg.get("weighting_params", {}),
                                **parse_pairs(wparams, "--weighting-param")}
    l_opts: dict[str, Any] = {**cfg.get("loader_options", {}),
                              **parse_pairs(loptions, "--loader-option")}
    t0 = time.perf_counter()
    model, report = train_from_path(
        data,
        out,
        format=fmt,
        loader_options=l_opts,
        generator=generator or cfg.get("generator", "markov"),
        weighting=weighting or cfg.get("weighting", DEFAULT_WEIGHTING),
        generator_params=gen_params,
        weighting_params=w_params,
        seed=seed if seed is not None else int(cfg.get("seed", 0)),
        own_code_min_visits=(own_min if own_min is not None
                             else int(cfg.get("own_code_min_visits", 0))),
        overwrite=overwrite,
    )
    s = model.summary
    click.echo(
        f"trained {model.generator_name} + {model.weighting.get('name')} on "
        f"{s.get('patients', 0):,} patients, {s.get('visits', 0):,} visits, "
        f"{model.hierarchy.n_codes:,} codes in {model.hierarchy.n_categories:,} categories "
        f"-> {out} in {time.perf_counter() - t0:.1f} s"
    )
