"""Engines run shard tasks: in this process, in W worker processes, or on Ray.

Each engine builds one :class:`~hiergen.generation.runner.ShardRunner` per worker (the model
is loaded once per worker) and calls ``on_done(record, timings)`` in the calling process as
shards finish, in any order. Shards are independent, so the files do not depend on the engine
or the number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from typing import Any

from hiergen.errors import PluginError
from hiergen.generation.manifest import ShardRecord
from hiergen.generation.runner import RunnerConfig, ShardRunner, ShardTask, ShardTimings

logger = logging.getLogger(__name__)

OnDone = Callable[[ShardRecord, ShardTimings], None]
ENGINES = ("local", "ray")


def run_in_process(
    config: RunnerConfig, tasks: Sequence[ShardTask], on_done: OnDone, model: Any = None
) -> None:
    """One worker: this process (``model`` reused when given).

    Shard ``i`` is written by a helper thread while shard ``i + 1`` is generated (Parquet
    writing releases the GIL), so at most two shards are in memory.
    """
    runner = ShardRunner(config, model=model)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hiergen-writer") as pool:
        writing: Future[tuple[ShardRecord, ShardTimings]] | None = None
        for task in tasks:
            generated = runner.generate(task)
            if writing is not None:
                on_done(*writing.result())
            writing = pool.submit(runner.write, task, *generated)
        if writing is not None:
            on_done(*writing.result())


# --- worker processes -----------------------------------------------------------------------
_RUNNER: ShardRunner | None = None


def _watch_parent(parent: int) -> None:
    # A worker whose parent was killed (SIGKILL included) exits instead of writing on.
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def _init_worker(config: RunnerConfig, parent: int) -> None:
    global _RUNNER
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _RUNNER = ShardRunner(config)


def _run_task(task: ShardTask) -> tuple[ShardRecord, ShardTimings]:
    assert _RUNNER is not None, "worker not initialised"
    return _RUNNER.run(task)


def run_processes(
    config: RunnerConfig, tasks: Sequence[ShardTask], on_done: OnDone, workers: int
) -> None:
    """``workers`` spawned processes, at most two shards in flight per worker."""
    ctx = multiprocessing.get_context("spawn")
    pending = list(reversed(tasks))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker,
        initargs=(config, os.getpid()),
    ) as pool:
        running: set[Future[tuple[ShardRecord, ShardTimings]]] = set()
        try:
            while pending or running:
                while pending and len(running) < 2 * workers:
                    running.add(pool.submit(_run_task, pending.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(*fut.result())
        except BaseException:
            for fut in running:
                fut.cancel()
            raise


# --- Ray ------------------------------------------------------------------------------------
def run_ray(
    config: RunnerConfig,
    tasks: Sequence[ShardTask],
    on_done: OnDone,
    workers: int,
    address: str | None = None,
) -> None:
    """``workers`` Ray actors, each holding one loaded model; output files go to
    ``config.out_dir``, which must be visible to every node (shared file system)."""
    try:
        import ray
    except ImportError as exc:
        raise PluginError(
            "engine 'ray': the ray package is not installed",
            hint="pip install 'hiergen[ray]'",
        ) from exc

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
        started = True
    try:
        actor_cls: Any = ray.remote(num_cpus=1)(_RayShardWorker)
        actors = [actor_cls.remote(config) for _ in range(max(workers, 1))]
        pending = list(reversed(tasks))
        in_flight: dict[Any, Any] = {}
        idle = list(actors)
        while pending or in_flight:
            while pending and idle:
                actor = idle.pop()
                in_flight[actor.run.remote(pending.pop())] = actor
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                idle.append(in_flight.pop(ref))
                record, timings = ray.get(ref)
                on_done(record, timings)
    finally:
        if started:
            ray.shutdown()


class _RayShardWorker:
    """A Ray actor: the model is loaded once, in the constructor."""

    def __init__(self, config: RunnerConfig) -> None:
        self.runner = ShardRunner(config)

    def run(self, task: ShardTask) -> tuple[ShardRecord, ShardTimings]:
        return self.runner.run(task)


def run_engine(
    engine: str,
    config: RunnerConfig,
    tasks: Sequence[ShardTask],
    on_done: OnDone,
    *,
    workers: int = 1,
    model: Any = None,
    address: str | None = None,
) -> None:
    """Dispatch to the engine named ``engine`` (``local`` or ``ray``)."""
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    if engine == "local":
        if workers == 1 or len(tasks) <= 1:
            run_in_process(config, tasks, on_done, model=model)
        else:
            run_processes(config, tasks, on_done, workers)
    elif engine == "ray":
        run_ray(config, tasks, on_done, workers, address)
    else:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
