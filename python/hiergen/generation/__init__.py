"""Bulk generation: per-shard seeds, the job manifest, engines and :func:`run_job`."""

from __future__ import annotations

from hiergen.generation.demographics import (
    DemographicsDistribution,
    DemographicsSource,
    parse_age_range,
    read_demographics_file,
)
from hiergen.generation.patients import GeneratedPatients
from hiergen.generation.seeds import ShardSeeds, shard_sequence

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "DemographicsDistribution",
    "DemographicsSource",
    "GeneratedPatients",
    "JobSummary",
    "ShardSeeds",
    "parse_age_range",
    "read_demographics_file",
    "run_job",
    "shard_sequence",
]


def __getattr__(name: str) -> object:
    # run_job imports hiergen.model, which imports this package: load it on first use.
    if name in ("run_job", "JobSummary", "DEFAULT_SHARD_SIZE"):
        from hiergen.generation import job

        return getattr(job, name)
    raise AttributeError(f"module 'hiergen.generation' has no attribute {name!r}")
