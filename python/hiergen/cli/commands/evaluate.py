"""``hiergen evaluate``: score synthetic data against real data and write a report."""

from __future__ import annotations

import json
from pathlib import Path

import click

FORMAT_HELP = "loader name (nhds, mimic3, meds, table, ...), 'flat' or 'auto' (guess)"


@click.command("evaluate")
@click.option("--real", "real_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Real data the generator never saw (the held-out reference).")
@click.option("--synthetic", "synthetic_path", required=True,
              type=click.Path(exists=True, path_type=Path),
              help="Output of `hiergen generate` (MEDS or flat table directory).")
@click.option("--train", "train_path", type=click.Path(exists=True, path_type=Path),
              help="The training data: enables privacy metrics and a same-size ceiling.")
@click.option("--real-format", default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--synthetic-format", default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--train-format", default="auto", show_default=True, help=FORMAT_HELP)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for report.md, report.html and report.json.")
@click.option("-m", "--metric", "metrics", multiple=True,
              help="Metric to compute (repeatable; default: all). See `hiergen plugins`.")
@click.option("--seed", default=0, show_default=True, help="Seed of samples and floor draws.")
@click.option("--privacy-sample", default=1000, show_default=True,
              help="Visits sampled for distance-to-closest-record and membership inference.")
@click.option("--no-baselines", is_flag=True, help="Skip the ceiling and floor rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(
    real_path: Path,
    synthetic_path: Path,
    train_path: Path | None,
    real_format: str,
    synthetic_format: str,
    train_format: str,
    out_dir: Path | None,
    metrics: tuple[str, ...],
    seed: int,
    privacy_sample: int,
    no_baselines: bool,
    as_json: bool,
) -> None:
    """Score synthetic data against real data: fidelity, plausibility, diversity, privacy.

    Every metric is printed beside the real value, a ceiling (real vs real) and a floor
    (independent codes at their marginal rates), with the share of the gap closed.
    """
    from hiergen.evaluate import evaluate, text_table, write_report
    from hiergen.evaluate.inputs import read_cohort

    real = read_cohort(real_path, real_format)
    synthetic = read_cohort(synthetic_path, synthetic_format)
    train = read_cohort(train_path, train_format) if train_path is not None else None
    report = evaluate(
        real, synthetic, train=train, metrics=list(metrics) or None, seed=seed,
        baselines=not no_baselines, privacy_sample=privacy_sample,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(text_table(report))
    if out_dir is not None:
        paths = write_report(report, out_dir)
        click.echo(f"report written: {', '.join(str(p) for p in paths)}", err=as_json)
    click.echo(
        f"evaluated {synthetic.n_visits:,} synthetic against {real.n_visits:,} real visits "
        f"in {report.info['seconds']} s",
        err=True,
    )
