"""The unit of work of a job: generate one shard and write its files.

A :class:`ShardRunner` lives in each worker (process or Ray actor) and loads the model once;
every engine calls :meth:`ShardRunner.run` with :class:`ShardTask` s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiergen.generation.demographics import DemographicsSource
from hiergen.generation.manifest import ShardRecord
from hiergen.generation.patients import GeneratedPatients
from hiergen.generation.seeds import ShardSeeds


@dataclass(frozen=True)
class ShardTask:
    """Shard ``index`` covers patients ``start .. start + count`` of the job."""

    index: int
    start: int
    count: int


@dataclass(frozen=True)
class RunnerConfig:
    """Everything a worker needs to build its :class:`ShardRunner` (small and picklable)."""

    model_dir: str | None
    writer: str
    writer_options: Mapping[str, Any]
    out_dir: str
    seed: int
    demographics: DemographicsSource = field(default_factory=DemographicsSource)
    threads: int | None = None
    #: Stage-1 sampling options set on the model (HiergenModel.set_sampling_options).
    sampling_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShardTimings:
    """Seconds spent in each step of one shard (kept out of the manifest)."""

    demographics_stage1: float
    stage2: float
    write: float

    def __add__(self, other: ShardTimings) -> ShardTimings:
        return ShardTimings(
            self.demographics_stage1 + other.demographics_stage1,
            self.stage2 + other.stage2,
            self.write + other.write,
        )


ZERO_TIMINGS = ShardTimings(0.0, 0.0, 0.0)


class ShardRunner:
    """Generates and writes shards with one loaded model and one writer."""

    def __init__(self, config: RunnerConfig, model: Any = None) -> None:
        from hiergen.model import HiergenModel
        from hiergen.writers import make_writer

        self.config = config
        self.model = model if model is not None else HiergenModel.load(config.model_dir)
        if config.threads is not None:
            self.model.use_threads(config.threads)
        self.model.set_sampling_options(**dict(config.sampling_options))
        self.writer = make_writer(
            config.writer, Path(config.out_dir), model=self.model, **dict(config.writer_options)
        )

    def generate(self, task: ShardTask) -> tuple[GeneratedPatients, float, float]:
        """Stage 1 and Stage 2 of one shard: (batch, seconds in Stage 1, in Stage 2)."""
        return self.model.generate_shard_timed(
            task.index, task.start, task.count, seed=self.config.seed,
            demographics=self.config.demographics,
        )

    def write(
        self, task: ShardTask, batch: GeneratedPatients, t_stage1: float, t_stage2: float
    ) -> tuple[ShardRecord, ShardTimings]:
        """Write one generated shard and describe it."""
        seed = self.config.seed
        t0 = time.perf_counter()
        files = self.writer.write_shard(task.index, batch)
        t_write = time.perf_counter() - t0
        record = ShardRecord(
            index=task.index,
            start=task.start,
            n_patients=batch.n_patients,
            n_visits=batch.n_visits,
            n_rows=batch.n_rows,
            seed=ShardSeeds.of(seed, task.index).describe(seed, task.index),
            files=tuple(files),
        )
        return record, ShardTimings(t_stage1, t_stage2, t_write)

    def run(self, task: ShardTask) -> tuple[ShardRecord, ShardTimings]:
        """Generate and write one shard."""
        return self.write(task, *self.generate(task))
