"""The trained-model bundle: Stage 1, Stage-2 weights, hierarchy and training summary.

A model directory holds::

    model.json            format version, generator and weighting names and parameters,
                          hierarchy, demographics histogram, training-data summary (counts)
    stage1/               written by the Stage-1 generator's ``save``
    stage2.safetensors    the Stage-2 weight tables (``weights``: n_strata x n_codes)
    stage2_context.*      optional (weighting ``context``): context tables, compact
                          safetensors + JSON (:mod:`hiergen.context.storage`)
    stage2_sampler/       optional: a Stage-2 sampler written by its weighting strategy
                          (e.g. ``code_head`` of hiergen-torch), which then draws the codes

:class:`HiergenModel` loads it (or the default model shipped in the package) and generates
patients, one batch or a stream of batches, reproducibly for a seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.demographics import N_STRATA, stratum
from hiergen.errors import ModelError, PluginError
from hiergen.generation.demographics import DemographicsDistribution, DemographicsSource
from hiergen.generation.patients import GeneratedPatients
from hiergen.generation.seeds import ShardSeeds, check_seed
from hiergen.generators.base import Stage1Generator
from hiergen.hierarchy import Hierarchy

logger = logging.getLogger(__name__)

FORMAT_NAME = "hiergen-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
STAGE1_DIR = "stage1"
STAGE2_FILE = "stage2.safetensors"
#: Folder of a Stage-2 sampler saved by its weighting strategy (e.g. the torch code head).
SAMPLER_DIR = "stage2_sampler"
#: Stem of the context tables (``.safetensors`` + ``.json``) of a context-aware Stage 2.
CONTEXT_STEM = "stage2_context"
#: Patients per batch of :meth:`HiergenModel.generate_batches` (and per shard of a job).
DEFAULT_BATCH_SIZE = 50_000


def default_model_dir() -> Path:
    """Directory of the model shipped inside the package (``hiergen/default_model``)."""
    return Path(__file__).resolve().parent / "default_model"


def _safetensors_header(fh: Any) -> bytes:
    """The header of a safetensors file with its keys sorted (the library writes metadata in
    an arbitrary order, so the raw bytes of one model can differ between saves)."""
    head = fh.read(8)
    if len(head) < 8:
        return head
    size = int.from_bytes(head, "little")
    raw = fh.read(size)
    try:
        return json.dumps(json.loads(raw), sort_keys=True).encode()
    except ValueError:
        return head + raw


def directory_hash(directory: str | Path) -> str:
    """SHA-256 over the relative paths and contents of every file of a model directory
    (safetensors headers canonicalised)."""
    root = Path(directory)
    digest = hashlib.sha256()
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
        and p.suffix not in (".py", ".pyc")
    )
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        with path.open("rb") as fh:
            if path.suffix == ".safetensors":
                digest.update(_safetensors_header(fh))
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _generator_class(name: str) -> Any:
    from hiergen.plugins.registry import get as lookup

    return lookup("generators", name).load()


class HiergenModel:
    """A trained two-stage model.

    Args:
        generator: the fitted Stage-1 model.
        generator_name: its registered name (``"markov"``).
        hierarchy: category -> code hierarchy of the model.
        weights: float64 ``(1, n_codes)`` or ``(N_STRATA, n_codes)`` Stage-2 weight tables.
        weighting: ``{"name": ..., "params": {...}}`` of the strategy that built ``weights``.
        demographics: age x sex histogram of the training patients (default sampling).
        summary: counts describing the training data (no patient rows).
        zero_weight: what the sampler does with a category whose weights are all zero.
        context: context tables (:class:`hiergen.context.ContextTables`): Stage 2 then draws
            each visit's codes given the codes already drawn in it (``weights`` is the
            fallback).
        sampler: a Stage-2 sampler of the weighting strategy (see
            :class:`hiergen.plugins.WeightingSpec`), which then draws every code; saved in
            the folder ``stage2_sampler`` and read back by the strategy's ``load_sampler``.
    """

    def __init__(
        self,
        generator: Stage1Generator,
        generator_name: str,
        hierarchy: Hierarchy,
        weights: npt.ArrayLike,
        *,
        weighting: Mapping[str, Any] | None = None,
        demographics: DemographicsDistribution | None = None,
        summary: Mapping[str, Any] | None = None,
        zero_weight: str = "uniform",
        directory: Path | None = None,
        content_hash: str | None = None,
        context: Any = None,
        sampler: Any = None,
    ) -> None:
        w = np.ascontiguousarray(weights, dtype=np.float64)
        if w.ndim == 1:
            w = w[None, :]
        if w.ndim != 2 or w.shape[1] != hierarchy.n_codes or w.shape[0] not in (1, N_STRATA):
            raise ModelError(
                f"weights: expected shape (1 or {N_STRATA}, {hierarchy.n_codes}), got {w.shape}"
            )
        if zero_weight not in ("error", "uniform"):
            raise ValueError(f"zero_weight: expected 'error' or 'uniform', got {zero_weight!r}")
        self.generator = generator
        self.generator_name = generator_name
        self.hierarchy = hierarchy
        self.weights = w
        self.weighting = dict(weighting or {"name": "custom", "params": {}})
        self.demographics = demographics or DemographicsDistribution.uniform()
        self.summary = dict(summary or {})
        self.zero_weight = zero_weight
        self.directory = directory
        self.content_hash = content_hash
        #: Threads used by the Stage-2 sampler (``None``: the sampler's default); see
        #: :meth:`use_threads` to cap Stage 1 as well.
        self.threads: int | None = None
        self._index: Any = None
        self._context_index: Any = None
        if context is not None and (
            context.n_codes != hierarchy.n_codes or context.n_categories != hierarchy.n_categories
        ):
            raise ModelError(
                f"context tables: built for {context.n_categories} categories / "
                f"{context.n_codes} codes, the hierarchy has {hierarchy.n_categories} / "
                f"{hierarchy.n_codes}"
            )
        self.context = context
        if sampler is not None and context is not None:
            raise ModelError("a model holds context tables or a Stage-2 sampler, not both")
        if sampler is not None and not callable(getattr(sampler, "sample_visits", None)):
            raise ModelError(f"sampler: {type(sampler).__name__} has no sample_visits method")
        self.sampler = sampler

    def __repr__(self) -> str:
        where = f", directory={str(self.directory)!r}" if self.directory else ""
        return (
            f"HiergenModel(generator={self.generator_name!r}, "
            f"weighting={self.weighting.get('name')!r}, categories={self.hierarchy.n_categories}, "
            f"codes={self.hierarchy.n_codes}{where})"
        )

    # --- Stage 2 --------------------------------------------------------------------------
    @property
    def stratified(self) -> bool:
        return bool(self.weights.shape[0] > 1)

    @property
    def index(self) -> Any:
        """The compiled Stage-2 sampler (:class:`hiergen._core.CategoryIndex`), built once."""
        if self._index is None:
            from hiergen import CategoryIndex

            w = self.weights if self.stratified else self.weights[0]
            self._index = CategoryIndex(self.hierarchy.offsets, w, zero_weight=self.zero_weight)
        return self._index

    @property
    def context_index(self) -> Any:
        """The context-aware sampler (:class:`hiergen._core.ContextIndex`) over :attr:`index`,
        built once; ``None`` without context tables."""
        if self.context is None:
            return None
        if self._context_index is None:
            from hiergen.context import context_index

            self._context_index = context_index(self.index, self.context)
        return self._context_index

    def use_threads(self, threads: int | None) -> None:
        """Cap the CPU threads of both stages (``None``: each stage's default), e.g. one per
        worker process when several run on one machine. Stage 1 is capped through the
        generator's optional ``set_threads(n)`` (generators that sample in parallel define
        it; the patients drawn never depend on it)."""
        if threads is not None and threads < 1:
            raise ValueError(f"threads: must be >= 1 or None, got {threads!r}")
        self.threads = threads
        set_threads = getattr(self.generator, "set_threads", None)
        if callable(set_threads):
            set_threads(threads)

    def set_sampling_options(self, **options: Any) -> None:
        """Override the Stage-1 generator's sampling options for this session (for the torch
        generators: ``temperature``, ``top_k``, ``top_p``, ``quantize``), through the
        generator's optional ``set_sampling_options(**options)``; nothing is saved. A
        generator without that hook takes none, and asking it for any is a ``ValueError``."""
        if not options:
            return
        hook = getattr(self.generator, "set_sampling_options", None)
        if not callable(hook):
            raise ValueError(
                f"sampling options: generator {self.generator_name!r} takes none, got "
                f"{', '.join(sorted(options))}"
            )
        hook(**options)

    def draw_codes(self, patients: Any, *, seed: int) -> npt.NDArray[np.int32]:
        """Stage 2: one code id per category of ``patients`` (a ``CategoryPatients``); with
        context tables, each code given the codes already drawn in its visit."""
        strata = None
        if self.stratified or self.sampler is not None:
            strata = stratum(patients.visit_sex, patients.visit_age)
        visit_offsets = np.ascontiguousarray(patients.visit_offsets, dtype=np.int64)
        categories = np.ascontiguousarray(patients.categories, dtype=np.int32)
        if self.sampler is not None:
            sampler = self.sampler
        else:
            sampler = self.context_index if self.context is not None else self.index
        codes = sampler.sample_visits(
            categories, visit_offsets, strata, seed=seed, threads=self.threads
        )
        return np.asarray(codes, dtype=np.int32)

    # --- generation -----------------------------------------------------------------------
    def sample_demographics(
        self,
        n: int,
        *,
        seed: int = 0,
        sex: int | str | None = None,
        age_range: tuple[int, int] | None = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
        """``n`` (age, sex) pairs from the training distribution (optionally restricted)."""
        source = _model_source(sex, age_range)
        rng = np.random.default_rng(check_seed(seed))
        return source.draw(0, int(n), rng, self.demographics)

    def generate_shard(
        self,
        shard: int,
        start: int,
        count: int,
        *,
        seed: int,
        demographics: DemographicsSource | None = None,
    ) -> GeneratedPatients:
        """Patients ``start .. start + count`` of a job: shard ``shard`` of seed ``seed``.

        This is the unit that jobs, :meth:`generate` and :meth:`generate_batches` share, so
        the same seed gives the same patients through every route.
        """
        return self.generate_shard_timed(
            shard, start, count, seed=seed, demographics=demographics
        )[0]

    def generate_shard_timed(
        self,
        shard: int,
        start: int,
        count: int,
        *,
        seed: int,
        demographics: DemographicsSource | None = None,
    ) -> tuple[GeneratedPatients, float, float]:
        """:meth:`generate_shard` plus the seconds spent in demographics + Stage 1 and in
        Stage 2."""
        seeds = ShardSeeds.of(seed, shard)
        source = demographics or DemographicsSource()
        t0 = time.perf_counter()
        rng = np.random.default_rng(seeds.demographics)
        age, sex = source.draw(start, count, rng, self.demographics)
        stage1 = self.generator.sample(age, sex, seed=seeds.stage1)
        if stage1.n_patients != count:
            raise ModelError(
                f"generator {self.generator_name!r}: asked for {count} patients, "
                f"got {stage1.n_patients}"
            )
        t1 = time.perf_counter()
        codes = self.draw_codes(stage1, seed=seeds.stage2)
        t2 = time.perf_counter()
        return GeneratedPatients(start, stage1, codes, self.hierarchy), t1 - t0, t2 - t1

    def generate(
        self,
        age: npt.ArrayLike | None = None,
        sex: npt.ArrayLike | None = None,
        *,
        n: int | None = None,
        seed: int = 0,
        x_num: npt.ArrayLike | None = None,
        x_cat: npt.ArrayLike | None = None,
        age_range: tuple[int, int] | None = None,
    ) -> GeneratedPatients:
        """Generate one batch.

        Give ``age`` and ``sex`` (arrays, or scalars broadcast to ``n``) for chosen patients;
        ``x_num``/``x_cat`` are the design page's names for them (``generate(x_num=[65.0],
        x_cat=[0])`` is one man aged 65). Without them, ``n`` patients (default 1) are drawn
        from the training demographics, optionally restricted by ``sex`` alone or
        ``age_range``.
        """
        age = x_num if age is None else age
        sex = x_cat if sex is None else sex
        if age is not None and sex is not None:
            a = np.atleast_1d(np.asarray(age, dtype=np.float32))
            s = np.atleast_1d(np.asarray(sex))
            if n is not None:
                a = np.broadcast_to(a, (n,)) if a.size == 1 else a
                s = np.broadcast_to(s, (n,)) if s.size == 1 else s
            source = DemographicsSource.explicit(a, s)
            assert source.age is not None
            count = int(source.age.size)
        elif age is not None:
            raise ValueError("sex: give sex with age (or neither, to sample both)")
        else:
            source = _model_source(sex, age_range)
            count = 1 if n is None else int(n)
        return self.generate_shard(0, 0, count, seed=seed, demographics=source)

    def generate_batches(
        self,
        n: int | None = None,
        *,
        seed: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        age: npt.ArrayLike | None = None,
        sex: npt.ArrayLike | None = None,
        age_range: tuple[int, int] | None = None,
        demographics: DemographicsSource | None = None,
        as_arrow: bool = False,
    ) -> Iterator[Any]:
        """Yield batches of ``batch_size`` patients (the last may be smaller).

        Batch ``i`` equals shard ``i`` of a job with the same ``seed`` and shard size, so
        ``hiergen generate`` and this iterator give the same patients. With ``as_arrow`` each
        batch is the flat long :class:`pyarrow.Table`, otherwise :class:`GeneratedPatients`.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        if demographics is None:
            if age is not None and sex is not None:
                demographics = DemographicsSource.explicit(age, sex)
            elif age is not None:
                raise ValueError("sex: give sex with age (or neither, to sample both)")
            else:
                demographics = _model_source(sex, age_range)
        if n is None:
            if demographics.kind != "explicit" or demographics.age is None:
                raise ValueError("n: required unless age and sex arrays are given")
            n = int(demographics.age.size)
        for shard, start in enumerate(range(0, int(n), batch_size)):
            count = min(batch_size, int(n) - start)
            batch = self.generate_shard(shard, start, count, seed=seed, demographics=demographics)
            yield batch.to_arrow() if as_arrow else batch

    # --- persistence ----------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The ``model.json`` content."""
        from hiergen import __version__

        weighting: dict[str, Any] = {
            "name": self.weighting.get("name", "custom"),
            "params": dict(self.weighting.get("params", {})),
            "file": STAGE2_FILE,
            "strata": int(self.weights.shape[0]),
            "zero_weight": self.zero_weight,
        }
        if self.context is not None:
            weighting["context"] = {"stem": CONTEXT_STEM, "tables": int(self.context.n_tables)}
        if self.sampler is not None:
            weighting["sampler"] = {"directory": SAMPLER_DIR}
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "hiergen_version": __version__,
            "generator": {"name": self.generator_name, "directory": STAGE1_DIR},
            "weighting": weighting,
            "hierarchy": self.hierarchy.to_dict(),
            "demographics": self.demographics.to_dict(),
            "training_summary": self.summary,
        }

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model directory (``overwrite`` replaces an existing one)."""
        from safetensors.numpy import save_file

        out = Path(directory)
        if out.exists() and any(out.iterdir()):
            if not overwrite:
                raise ModelError(
                    f"model directory {out}: exists and is not empty (overwrite=True?)"
                )
            for name in (MODEL_FILE, STAGE2_FILE, f"{CONTEXT_STEM}.safetensors",
                         f"{CONTEXT_STEM}.json"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / STAGE1_DIR, ignore_errors=True)
            shutil.rmtree(out / SAMPLER_DIR, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / STAGE1_DIR).mkdir(exist_ok=True)
        self.generator.save(out / STAGE1_DIR)
        save_file(
            {"weights": self.weights, "offsets": np.asarray(self.hierarchy.offsets)},
            str(out / STAGE2_FILE),
            # One metadata key only: safetensors writes several in an arbitrary order.
            metadata={"format": f"{FORMAT_NAME}-stage2-v{FORMAT_VERSION}"},
        )
        if self.context is not None:
            from hiergen.context import save_context_tables

            save_context_tables(self.context, out, CONTEXT_STEM, compact=True)
        if self.sampler is not None:
            self.sampler.save(out / SAMPLER_DIR)
        text = json.dumps(self.to_config(), indent=1, sort_keys=True, allow_nan=False)
        tmp = out / f".{MODEL_FILE}.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, out / MODEL_FILE)
        self.directory = out
        self.content_hash = directory_hash(out)
        logger.info("saved model to %s (hash %s)", out, self.content_hash[:12])
        return out

    @classmethod
    def load(cls, directory: str | Path | None = None) -> HiergenModel:
        """Load a model directory; ``None`` loads the default model shipped with hiergen."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        root = default_model_dir() if directory is None else Path(directory)
        config_path = root / MODEL_FILE
        if not config_path.is_file():
            hint = (
                "the default model is missing from this install; train one with "
                "`hiergen train` and pass its directory"
                if directory is None else "pass the directory written by `hiergen train`"
            )
            raise ModelError(f"model directory {root}: {MODEL_FILE} not found", hint=hint)
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"model file {config_path}: unreadable JSON ({exc})") from exc
        if config.get("format") != FORMAT_NAME:
            raise ModelError(f"model file {config_path}: not a hiergen model (format field)")
        version = config.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"model file {config_path}: format_version {version!r} is not supported "
                f"(this hiergen reads version {FORMAT_VERSION})"
            )
        try:
            hierarchy = Hierarchy.from_dict(config["hierarchy"])
            gen_cfg = config["generator"]
            w_cfg = config["weighting"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model file {config_path}: malformed field ({exc!r})") from exc
        stage2 = root / w_cfg.get("file", STAGE2_FILE)
        try:
            tensors = load_file(str(stage2))
        except (OSError, SafetensorError) as exc:
            raise ModelError(f"model file {stage2}: cannot be read ({exc})") from exc
        if "weights" not in tensors:
            raise ModelError(f"model file {stage2}: tensor 'weights' missing")
        offsets = tensors.get("offsets")
        if offsets is not None and not np.array_equal(offsets, hierarchy.offsets):
            raise ModelError(f"model file {stage2}: offsets disagree with {MODEL_FILE}'s hierarchy")
        gen_name = gen_cfg["name"]
        generator = _generator_class(gen_name).load(root / gen_cfg.get("directory", STAGE1_DIR))
        demographics = (
            DemographicsDistribution.from_dict(config["demographics"])
            if "demographics" in config else None
        )
        context = None
        if w_cfg.get("context"):
            from hiergen.context import load_context_tables

            context = load_context_tables(root, str(w_cfg["context"].get("stem", CONTEXT_STEM)))
        sampler = None
        if w_cfg.get("sampler"):
            sampler = _load_sampler(root, str(w_cfg.get("name")), w_cfg["sampler"])
        return cls(
            generator,
            gen_name,
            hierarchy,
            tensors["weights"],
            weighting={"name": w_cfg.get("name", "custom"), "params": w_cfg.get("params", {})},
            demographics=demographics,
            summary=config.get("training_summary", {}),
            zero_weight=w_cfg.get("zero_weight", "uniform"),
            directory=root,
            content_hash=directory_hash(root),
            context=context,
            sampler=sampler,
        )


def _load_sampler(root: Path, weighting: str, cfg: Any) -> Any:
    """The Stage-2 sampler of the weighting strategy ``weighting`` stored under ``root``."""
    from hiergen.plugins.registry import get

    where = root / str(cfg.get("directory", SAMPLER_DIR) if isinstance(cfg, dict) else SAMPLER_DIR)
    try:
        spec = get("weightings", weighting)
    except PluginError as exc:
        raise ModelError(
            f"model directory {root}: its Stage 2 is drawn by the weighting strategy "
            f"{weighting!r}, which is not installed ({exc})"
        ) from exc
    if spec.load_sampler is None:
        raise ModelError(
            f"model directory {root}: weighting strategy {weighting!r} cannot read a Stage-2 "
            f"sampler (no load_sampler)"
        )
    return spec.load_sampler(where)


def _model_source(
    sex: Any, age_range: tuple[int, int] | None
) -> DemographicsSource:
    from hiergen.generation.demographics import sex_codes

    code = None if sex is None else int(sex_codes(sex)[0])
    if sex is not None and np.atleast_1d(np.asarray(sex)).size != 1:
        raise ValueError("sex: give one sex to restrict sampling, or sex arrays together with age")
    return DemographicsSource("model", sex=code, age_range=age_range)


def load_model(directory: str | Path | None = None) -> HiergenModel:
    """Shorthand for :meth:`HiergenModel.load`."""
    return HiergenModel.load(directory)


__all__ = [
    "CONTEXT_STEM",
    "DEFAULT_BATCH_SIZE",
    "GeneratedPatients",
    "HiergenModel",
    "default_model_dir",
    "directory_hash",
    "load_model",
]
