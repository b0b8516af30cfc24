"""Train a two-stage model from a cohort and save it as a model directory.

The Stage-1 generator and the Stage-2 weighting strategy are chosen by their registered
names (``markov``, ``frequency``, ...; see ``hiergen plugins``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.generation.demographics import DemographicsDistribution
from hiergen.hierarchy import Hierarchy, frequent_codes
from hiergen.model import HiergenModel
from hiergen.plugins.registry import get as lookup
from hiergen.weighting import build_weights

#: The Stage-2 strategy of a model trained without one named: context-aware tables, the
#: best Stage 2 on the oracle protocol (README, "Stage 2 alone") and the shipped model's.
DEFAULT_WEIGHTING = "context"

logger = logging.getLogger(__name__)


def training_summary(cohort: Cohort, hierarchy: Hierarchy, **extra: Any) -> dict[str, Any]:
    """Counts that describe the training data (no patient rows, nothing identifying)."""
    first = cohort.patient_offsets[:-1][cohort.visits_per_patient > 0]
    sex = cohort.sex[first]
    return {
        "patients": cohort.n_patients,
        "visits": cohort.n_visits,
        "diagnosis_rows": cohort.n_rows,
        "distinct_codes": hierarchy.n_codes,
        "distinct_categories": hierarchy.n_categories,
        "codes_per_visit_mean": round(cohort.n_rows / max(cohort.n_visits, 1), 4),
        "visits_per_patient_mean": round(cohort.n_visits / max(cohort.n_patients, 1), 4),
        "patients_male": int((sex == 0).sum()),
        "patients_female": int((sex == 1).sum()),
        **extra,
    }


def _stored_context(code_weights: Any) -> Any:
    """Context tables of a context-aware strategy (``context``), as the model saves them
    (compact), so generation is the same before and after saving; None for other ones."""
    tables = getattr(code_weights, "tables", None)
    if tables is None:
        return None
    from hiergen.context import as_stored

    return as_stored(tables)


def train(
    cohort: Cohort,
    out_dir: str | Path | None = None,
    *,
    generator: str = "markov",
    weighting: str = DEFAULT_WEIGHTING,
    generator_params: Mapping[str, Any] | None = None,
    weighting_params: Mapping[str, Any] | None = None,
    seed: int = 0,
    overwrite: bool = False,
    source: Mapping[str, Any] | None = None,
    own_code_min_visits: int = 0,
) -> HiergenModel:
    """Fit Stage 1 and build the Stage-2 weights on ``cohort``; save to ``out_dir`` if given.

    Args:
        generator: registered Stage-1 generator name; ``generator_params`` go to its class.
        weighting: registered Stage-2 strategy name; ``weighting_params`` override its
            defaults.
        source: extra facts for the training summary (format, file name).
        own_code_min_visits: when > 0, codes held by at least this many visits become
            categories of their own (:func:`hiergen.hierarchy.frequent_codes`), so that
            Stage 1 models them directly.
    """
    if cohort.n_rows == 0:
        raise ValueError("cohort: no diagnosis rows to train on")
    gen_spec = lookup("generators", generator)
    lookup("weightings", weighting)  # an unknown name fails before any work
    used = np.unique(cohort.codes)
    own = frequent_codes(cohort, own_code_min_visits) if own_code_min_visits > 0 else []
    hierarchy = Hierarchy.from_codes(
        (cohort.vocab[i] for i in used.tolist()), own_categories=own
    )
    logger.info(
        "training %s + %s on %d patients, %d visits, %d codes in %d categories",
        generator, weighting, cohort.n_patients, cohort.n_visits, hierarchy.n_codes,
        hierarchy.n_categories,
    )
    # Stage 2 first: a bad weighting parameter fails before Stage 1 has trained.
    code_weights = build_weights(weighting, hierarchy, cohort, weighting_params)
    stage1 = gen_spec.load()(**dict(generator_params or {}))
    stage1.fit(cohort, hierarchy, seed=seed)
    first = cohort.patient_offsets[:-1][cohort.visits_per_patient > 0]
    demographics = DemographicsDistribution.from_arrays(cohort.age[first], cohort.sex[first])
    model = HiergenModel(
        stage1,
        generator,
        hierarchy,
        code_weights.weights,
        weighting={"name": weighting, "params": dict(code_weights.params)},
        demographics=demographics,
        summary=training_summary(cohort, hierarchy, seed=seed, **dict(source or {})),
        context=_stored_context(code_weights),
        sampler=getattr(code_weights, "sampler", None),
    )
    if out_dir is not None:
        model.save(out_dir, overwrite=overwrite)
    return model


def train_from_path(
    data: str | Path,
    out_dir: str | Path | None = None,
    *,
    format: str,
    loader_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[HiergenModel, Any]:
    """Load ``data`` with the loader ``format``, then :func:`train`; returns (model, report)."""
    spec = lookup("loaders", format)
    cohort, report = spec.load(data, **dict(loader_options or {}))
    source = {"format": format, "source": Path(data).name}
    model = train(cohort, out_dir, source=source, **kwargs)
    return model, report
