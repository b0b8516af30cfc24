"""Evaluation of synthetic cohorts: fidelity, plausibility, diversity and privacy metrics,
each beside its ceiling (real vs real) and floor (independent codes), as tables and reports.

>>> report = evaluate(heldout, synthetic, train=train)   # doctest: +SKIP
>>> print(text_table(report))                            # doctest: +SKIP
"""

from __future__ import annotations

from hiergen.evaluate.baselines import independent_codes, resample_split
from hiergen.evaluate.render import text_table, to_html, to_markdown, write_report
from hiergen.evaluate.report import (
    EvaluationReport,
    MetricRow,
    available_metrics,
    evaluate,
)

__all__ = [
    "EvaluationReport",
    "MetricRow",
    "available_metrics",
    "evaluate",
    "independent_codes",
    "resample_split",
    "text_table",
    "to_html",
    "to_markdown",
    "write_report",
]
