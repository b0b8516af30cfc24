"""``hiergen generate``: synthetic patients to MEDS, Parquet or CSV, sharded and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hiergen.cli.commands._options import parse_pairs


@click.command("generate")
@click.argument("model_dir", required=False, type=click.Path(path_type=Path))
@click.option("-n", "--patients", "n", type=click.IntRange(min=0),
              help="Number of patients (default: one per row of --demographics).")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory.")
@click.option("-f", "--format", "fmt", default="meds", show_default=True,
              help="Writer: meds, parquet, csv (or a plugin writer).")
@click.option("-s", "--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("-j", "--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (or Ray actors); output does not depend on it.")
@click.option("--sex", type=click.Choice(["M", "F"], case_sensitive=False),
              help="Generate only men or only women.")
@click.option("--age-range", metavar="LO-HI",
              help="Ages at the first visit, whole years inclusive, e.g. 40-60.")
@click.option("--demographics", "demo_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV/Parquet with age, sex (optional weight): one patient per row, or "
                   "rows drawn with replacement when -n is given.")
@click.option("--resume", is_flag=True, help="Finish an interrupted job in OUT.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of a previous job in OUT.")
@click.option("--shard-size", default=None, type=click.IntRange(min=1),
              help="Patients per shard and output file [default: 50000].")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True)
@click.option("--address", help="Ray cluster address (with --engine ray).")
@click.option("--writer-option", "woptions", multiple=True, metavar="KEY=VALUE",
              help="Writer option, e.g. code_prefix=ICD9/ or start_date=2015-01-01.")
@click.option("--code-prefix", help="MEDS code prefix [default: ICD9CM/].")
@click.option("--sampling-option", "soptions", multiple=True, metavar="KEY=VALUE",
              help="Stage-1 sampling option, e.g. quantize=int8, top_p=0.95, temperature=0.8 "
                   "(torch generators); repeatable.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def command(
    model_dir: Path | None,
    n: int | None,
    out: Path,
    fmt: str,
    seed: int,
    workers: int,
    sex: str | None,
    age_range: str | None,
    demo_file: Path | None,
    resume: bool,
    overwrite: bool,
    shard_size: int | None,
    engine: str,
    address: str | None,
    woptions: tuple[str, ...],
    code_prefix: str | None,
    soptions: tuple[str, ...],
    progress: bool,
) -> None:
    """Generate synthetic patients with the model in MODEL_DIR (default: the model shipped
    with hiergen, trained on NHDS 2010).

    \b
    Examples:
      hiergen generate -n 100000 -o synthetic/
      hiergen generate my_model/ -n 10000000 -o out/ --format parquet --workers 2 --seed 7
      hiergen generate -n 1000 -o women/ --sex F --age-range 40-60
      hiergen generate tf_model/ -n 100000 -o out/ --sampling-option quantize=int8
    """
    from tqdm import tqdm

    from hiergen.generation.demographics import (
        DemographicsSource,
        parse_age_range,
        read_demographics_file,
    )
    from hiergen.generation.job import DEFAULT_SHARD_SIZE, run_job
    from hiergen.model import HiergenModel

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite cannot be combined")
    if address and engine != "ray":
        raise click.UsageError("--address needs --engine ray")
    if demo_file is not None:
        if sex or age_range:
            raise click.UsageError("--demographics cannot be combined with --sex or --age-range")
        demographics = read_demographics_file(demo_file, resample=n is not None)
        if n is None:
            assert demographics.age is not None
            n = int(demographics.age.size)
    else:
        if n is None:
            raise click.UsageError("-n/--patients is required (or give --demographics FILE)")
        try:
            ages = parse_age_range(age_range) if age_range else None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--age-range") from None
        demographics = DemographicsSource(
            "model", sex=None if sex is None else ("MF".index(sex.upper())), age_range=ages
        )
    options: dict[str, Any] = parse_pairs(woptions, "--writer-option")
    sampling = parse_pairs(soptions, "--sampling-option")
    if code_prefix is not None:
        options["code_prefix"] = code_prefix

    model = HiergenModel.load(model_dir)
    bar = tqdm(total=n, unit=" patients", unit_scale=True, disable=not progress or None,
               dynamic_ncols=True, desc="generate")

    def on_shard(record: Any) -> None:
        bar.update(record.n_patients)

    try:
        summary = run_job(
            out,
            n=n,
            model=model,
            seed=seed,
            fmt=fmt,
            shard_size=shard_size or DEFAULT_SHARD_SIZE,
            workers=workers,
            engine=engine,
            resume=resume,
            overwrite=overwrite,
            demographics=demographics,
            writer_options=options,
            on_shard=on_shard,
            address=address,
            sampling_options=sampling,
        )
    finally:
        bar.close()
    click.echo(summary.line())
