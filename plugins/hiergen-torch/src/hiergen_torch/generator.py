"""The ``lstm`` and ``transformer`` Stage-1 generators (fit / sample / save / load)."""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from hiergen import Cohort, Hierarchy
from hiergen.demographics import MAX_AGE, parse_sex
from hiergen.errors import DataError, ModelError
from hiergen.generators import CategoryPatients
from hiergen.generators.checkpoint import load_checkpoint, save_checkpoint
from hiergen.generators.sequences import (
    PAD,
    TokenSequences,
    TokenVocab,
    build_vocab,
    decode,
    encode,
)
from hiergen_torch.constraints import allowed_tokens, mask_logits
from hiergen_torch.decoding import Sampler, generate_blocks
from hiergen_torch.models import LSTMLM, TransformerLM
from hiergen_torch.quantization import check_quantize, quantize_int8
from hiergen_torch.sampling import check_sampling_options

log = logging.getLogger(__name__)

#: Version of the model layout stored in the checkpoint config (bumped on incompatible change;
#: 2: the LSTM normalises its outputs before the output layer).
MODEL_VERSION = 2


@dataclass
class TorchConfig:
    """Hyper-parameters of a torch generator (stored in the checkpoint)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    patience: int = 3
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    sample_batch_size: int = 1024
    max_len: int = 0  # 0: longest training sequence + 2
    max_codes: int = 0  # 0: from the training data
    max_visits: int = 0  # 0: from the training data
    max_seconds: float = 0.0  # training time budget; 0: none (epochs and early stopping)
    #: Sampling (and log_likelihood) network on CPU: "none" (float32) or "int8" (a dynamic
    #: int8 copy of the linear layers, about 1.3x faster at d=256; see quantization.py).
    quantize: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)


def _check_sampling_settings(values: dict[str, Any], device: torch.device) -> None:
    """``ValueError`` naming the setting for a sampling setting of the wrong type or range
    (the checks of construction, ``-p`` at training, and :meth:`set_sampling_options`)."""
    for key, kinds in (("temperature", (int, float)), ("top_p", (int, float)),
                       ("top_k", (int,)), ("sample_batch_size", (int,))):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = "a number" if len(kinds) == 2 else "an integer"
            raise ValueError(f"{key}: expected {kind}, got {value!r}")
    check_sampling_options(values["temperature"], values["top_k"], values["top_p"])
    if values["sample_batch_size"] < 1:
        raise ValueError(f"sample_batch_size: must be >= 1, got {values['sample_batch_size']}")
    check_quantize(values["quantize"], device)


def _resolve_device(device: str | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TorchGenerator:
    """Shared machinery of the torch generators; subclasses choose the network."""

    name: ClassVar[str] = ""
    #: Checkpoint model_version values this class reads.
    readable_versions: ClassVar[tuple[int, ...]] = (MODEL_VERSION,)
    #: Torch intra-op threads for training on CPU when ``threads`` is not given (None:
    #: torch's default).
    cpu_train_threads: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        device: str | None = None,
        progress: bool = True,
        threads: int | None = None,
        workers: int | None = None,
        sampler: Sampler = "auto",
        **options: Any,
    ) -> None:
        known = {f for f in TorchConfig.__dataclass_fields__ if f != "extra"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"{self.name}: unknown option(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        self.config = TorchConfig(**options)
        if threads is not None and threads < 1:
            raise ValueError(f"threads: must be >= 1, got {threads}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers: must be >= 1, got {workers}")
        if sampler not in ("auto", "compiled", "torch"):
            raise ValueError(f"sampler: expected 'auto', 'compiled' or 'torch', got {sampler!r}")
        self.device = _resolve_device(device)
        _check_sampling_settings(asdict(self.config), self.device)
        self.progress = progress
        self.threads = threads
        #: Sampling worker threads, each running whole blocks of ``sample_batch_size``
        #: patients with one torch thread (None: one per CPU core, at most 8, on CPU; one on
        #: GPU). The patients drawn do not depend on it.
        self.workers = workers
        self.sampler: Sampler = sampler
        self.model: TransformerLM | LSTMLM | None = None
        #: (network, its int8 copy), built on first use under quantize="int8".
        self._int8: tuple[nn.Module, TransformerLM | LSTMLM] | None = None
        self.vocab: TokenVocab | None = None
        self.hierarchy: Hierarchy | None = None
        self.summary: dict[str, Any] = {}
        self.history: list[dict[str, float]] = []

    def set_threads(self, threads: int | None) -> None:
        """Sampling worker threads (``None``: one per CPU core on CPU); hiergen calls this
        with 1 when several worker processes share the machine."""
        if threads is not None and threads < 1:
            raise ValueError(f"threads: must be >= 1 or None, got {threads}")
        self.workers = threads

    #: Options :meth:`set_sampling_options` takes.
    sampling_option_names: ClassVar[tuple[str, ...]] = (
        "temperature", "top_k", "top_p", "quantize", "sample_batch_size")

    def set_sampling_options(self, **options: Any) -> None:
        """Change how :meth:`sample` draws (``temperature``, ``top_k``, ``top_p``,
        ``quantize``, ``sample_batch_size``) without retraining; checked before anything
        changes. hiergen calls this for ``hiergen generate --sampling-option KEY=VALUE``."""
        unknown = sorted(set(options) - set(self.sampling_option_names))
        if unknown:
            raise ValueError(f"sampling options: {self.name} does not take "
                             f"{', '.join(unknown)}; it takes "
                             f"{', '.join(self.sampling_option_names)}")
        _check_sampling_settings({**asdict(self.config), **options}, self.device)
        for key, value in options.items():
            setattr(self.config, key, value)

    # --- networks -----------------------------------------------------------------------
    def _build_model(self, n_tokens: int, max_len: int) -> TransformerLM | LSTMLM:
        raise NotImplementedError

    # --- training -----------------------------------------------------------------------
    def fit(self, cohort: Cohort, hierarchy: Hierarchy, *, seed: int = 0) -> None:
        """Train on ``cohort`` (codes mapped to ``hierarchy`` categories) with early stopping
        (and within ``max_seconds`` of training when that is set)."""
        cfg = self.config
        if cohort.n_patients == 0 or cohort.n_rows == 0:
            raise DataError("cohort: empty (no patients or no diagnosis codes); nothing to fit")
        if cfg.max_seconds < 0:
            raise ValueError(f"max_seconds: must be >= 0 (0: no limit), got {cfg.max_seconds}")
        vocab = build_vocab(cohort, hierarchy)
        if vocab.categories.size < 2:
            raise DataError(
                f"cohort: only one category ({vocab.labels[0]!r}); a sequence model needs at "
                "least two"
            )
        seqs = encode(cohort, hierarchy, vocab)
        summary = seqs.summary()
        max_len = cfg.max_len or int(summary["max_tokens"]) + 2
        if max_len < 2:
            raise ValueError(f"max_len: must be >= 2, got {max_len}")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(seqs.n_patients)
        n_val = int(round(seqs.n_patients * cfg.val_fraction)) if seqs.n_patients >= 10 else 0
        val_idx, train_idx = np.sort(perm[:n_val]), perm[n_val:]
        data = _Tensors.of(seqs, self.device, vocab, summary)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._build_model(vocab.n_tokens, max_len).to(self.device)
            optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
            best = math.inf
            best_state = copy.deepcopy(model.state_dict())
            bad_epochs = 0
            started = time.perf_counter()
            deadline = started + cfg.max_seconds if cfg.max_seconds > 0 else math.inf
            self.history = []
            threads = self.threads
            if threads is None and self.device.type == "cpu":
                threads = self.cpu_train_threads
            with _threads(threads):
                for epoch in range(cfg.epochs):
                    model.train()
                    batches = _length_batches(data.lengths, train_idx, cfg.batch_size, rng)
                    train_loss, done = self._run_epoch(model, data, batches, optim, epoch,
                                                       deadline)
                    val_loss = (self._evaluate(model, data, val_idx) if n_val
                                else train_loss)
                    self.history.append({
                        "epoch": epoch + done / max(len(batches), 1), "train_nll": train_loss,
                        "val_nll": val_loss, "seconds": time.perf_counter() - started})
                    log.info("%s epoch %d: train nll %.4f, val nll %.4f",
                             self.name, epoch + 1, train_loss, val_loss)
                    if val_loss < best - 1e-4:
                        best, bad_epochs = val_loss, 0
                        best_state = copy.deepcopy(model.state_dict())
                    else:
                        bad_epochs += 1
                        if bad_epochs >= cfg.patience:
                            break
                    if time.perf_counter() >= deadline:
                        log.info("%s: time budget of %.0f s reached after %.2f epochs",
                                 self.name, cfg.max_seconds, self.history[-1]["epoch"])
                        break
            model.load_state_dict(best_state)
        model.eval()
        self._int8 = None
        self.model, self.vocab, self.hierarchy = model, vocab, hierarchy
        self.summary = {**summary, "best_val_nll": best, "epochs_run": len(self.history),
                        "train_seconds": time.perf_counter() - started,
                        "n_validation_patients": int(n_val)}
        log.info("%s: trained on %d patients in %.1f s, best validation nll %.4f",
                 self.name, seqs.n_patients, self.summary["train_seconds"], best)

    @staticmethod
    def _loss(model: TransformerLM | LSTMLM, data: _Tensors, idx: npt.NDArray[np.int64]
              ) -> torch.Tensor:
        """Summed NLL (nats) of the sequences ``idx``, padded to the longest of them, under
        the decoder's constraints (:mod:`hiergen_torch.constraints`); the output layer runs
        only where there is a target (not on padding)."""
        width = int(data.lengths[idx].max())
        rows = torch.from_numpy(idx).to(data.tokens.device)
        tokens = data.tokens.index_select(0, rows)[:, :width]
        hidden = model.features(data.sex.index_select(0, rows), data.age.index_select(0, rows),
                                tokens[:, :-1])
        target = tokens != PAD
        goal = tokens[target]

        def at(x: torch.Tensor) -> torch.Tensor:
            return x.index_select(0, rows)[:, :width][target]

        logits = mask_logits(model.head(hidden[target]), goal, at(data.lower),
                             at(data.no_visit_end), at(data.no_end))
        return F.cross_entropy(logits, goal, reduction="sum")

    def _run_epoch(self, model: TransformerLM | LSTMLM, data: _Tensors,
                   batches: list[npt.NDArray[np.int64]], optim: torch.optim.Optimizer,
                   epoch: int, deadline: float) -> tuple[float, int]:
        """One pass over ``batches`` (stopping early at ``deadline``): mean training NLL per
        token and the number of batches run."""
        from tqdm.auto import tqdm

        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count, done = 0, 0
        bar = tqdm(batches, disable=not self.progress, desc=f"{self.name} epoch {epoch + 1}",
                   leave=False)
        for idx in bar:
            n = int(data.lengths[idx].sum())
            loss = self._loss(model, data, idx)
            optim.zero_grad(set_to_none=True)
            (loss / max(n, 1)).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            total += loss.detach()
            count += n
            done += 1
            if self.progress and done % 50 == 0:
                bar.set_postfix(nll=f"{float(total) / max(count, 1):.3f}", refresh=False)
            if time.perf_counter() >= deadline:
                break
        bar.close()
        return float(total) / max(count, 1), done

    @torch.no_grad()
    def _evaluate_sum(self, model: TransformerLM | LSTMLM, data: _Tensors,
                      index: npt.NDArray[np.int64]) -> tuple[float, int]:
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        size = max(self.config.batch_size, 1024)
        for idx in _length_batches(data.lengths, index, size, None):
            total += self._loss(model, data, idx)
        return float(total), int(data.lengths[index].sum())

    def _evaluate(self, model: TransformerLM | LSTMLM, data: _Tensors,
                  index: npt.NDArray[np.int64]) -> float:
        total, count = self._evaluate_sum(model, data, index)
        return total / max(count, 1)

    def log_likelihood(self, cohort: Cohort) -> tuple[float, int]:
        """``(total NLL in nats, number of tokens)`` of ``cohort``, as markov's: the tokens
        are the category tokens plus one marker per visit, each visit's categories in the
        model's canonical order. Categories outside the model's vocabulary are left out (see
        :meth:`n_unknown_rows`). Under ``quantize="int8"`` this scores the int8 network, the
        one that samples."""
        _, vocab, hierarchy = self._require_fitted()
        model = self._inference_model()
        seqs = encode(cohort, hierarchy, vocab, unknown="drop")
        data = _Tensors.of(seqs, self.device, vocab, self.summary)
        with _threads(self.threads):
            return self._evaluate_sum(model, data, np.arange(seqs.n_patients))

    def nll(self, cohort: Cohort) -> float:
        """Mean per-token negative log-likelihood (nats) of ``cohort``; unseen categories
        are left out of it."""
        total, count = self.log_likelihood(cohort)
        return total / max(count, 1)

    def n_unknown_rows(self, cohort: Cohort) -> int:
        """Diagnosis rows of ``cohort`` whose category the model has never seen."""
        _, vocab, hierarchy = self._require_fitted()
        cats = cohort.category_ids_in(hierarchy)
        return int(np.count_nonzero(vocab.token_of_category[cats] < 0))

    # --- sampling -----------------------------------------------------------------------
    def _require_fitted(self) -> tuple[TransformerLM | LSTMLM, TokenVocab, Hierarchy]:
        if self.model is None or self.vocab is None or self.hierarchy is None:
            raise ModelError(f"{self.name}: the model is not trained; call fit() or load()")
        return self.model, self.vocab, self.hierarchy

    def _inference_model(self) -> TransformerLM | LSTMLM:
        """The network that samples: the trained one, or its int8 copy under
        ``quantize="int8"`` (made once per trained network)."""
        model, _, _ = self._require_fitted()
        check_quantize(self.config.quantize, self.device)
        if self.config.quantize == "none":
            return model
        if self._int8 is None or self._int8[0] is not model:
            self._int8 = (model, quantize_int8(model))
        return self._int8[1]

    def sample(self, age: npt.ArrayLike, sex: npt.ArrayLike, *, seed: int) -> CategoryPatients:
        """One patient per (age, sex) pair; the same seed gives the same patients on CPU."""
        _, vocab, _ = self._require_fitted()
        model = self._inference_model()
        age_a, sex_a = _demographics(age, sex)
        cfg, summary = self.config, self.summary
        max_len = min(cfg.max_len or model.max_len, model.max_len)
        max_codes = cfg.max_codes or int(summary.get("max_categories_per_visit", max_len))
        max_visits = cfg.max_visits or int(summary.get("max_visits", max_len))
        caps = torch.from_numpy(vocab.max_repeats.astype(np.int64))
        # One key for the whole request; patient i draws from its own stream i of it, so
        # the fixed blocks may run in any order on any worker.
        key = int(np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0])
        model.eval()
        workers = self.workers or (min(os.cpu_count() or 1, 8) if self.device.type == "cpu"
                                   else 1)
        # One intra-op thread per worker unless told otherwise: per-step operations are too
        # small for torch's thread pool (on a busy 2-core machine 2 intra-op threads were
        # 7x slower than 1), while workers scale.
        with _threads(self.threads or 1):
            out = generate_blocks(
                model, sex_a.astype(np.int64), age_a, block_size=cfg.sample_batch_size,
                workers=workers, device=self.device, seed=key, max_repeats=caps,
                max_len=max_len, max_codes=max_codes, max_visits=max_visits,
                temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                sampler=self.sampler)
        return decode(out, sex_a, age_a, vocab)

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        """Write ``model.safetensors`` + ``config.json`` (config, vocab, hierarchy, summary)."""
        model, vocab, hierarchy = self._require_fitted()
        arrays = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
        config = {
            "model_version": MODEL_VERSION,
            "generator": self.name,
            "hyper_parameters": asdict(self.config),
            "n_tokens": vocab.n_tokens,
            "max_len": int(model.max_len),
            "vocab": vocab.to_dict(),
            "hierarchy": hierarchy.to_dict(),
            "training_summary": self.summary,
            "history": self.history,
        }
        save_checkpoint(directory, self.name, config, arrays)

    @classmethod
    def load(cls, directory: Path | str, *, device: str | None = None,
             progress: bool = True, threads: int | None = None, workers: int | None = None,
             sampler: Sampler = "auto") -> TorchGenerator:
        """Read a checkpoint written by :meth:`save` (no training data needed)."""
        ckpt = load_checkpoint(directory, kind=cls.name)
        cfg = ckpt.config
        where = f"{directory}/config.json"
        if cfg.get("model_version") not in cls.readable_versions:
            raise ModelError(f"{where}: model_version {cfg.get('model_version')!r} is not "
                             f"supported (this hiergen-torch reads {cls.readable_versions} "
                             f"for {cls.name}; retrain the model)")
        try:
            options = {k: v for k, v in cfg["hyper_parameters"].items() if k != "extra"}
            gen = cls(device=device, progress=progress, threads=threads, workers=workers,
                      sampler=sampler, **options)
            vocab = TokenVocab.from_dict(cfg["vocab"])
            hierarchy = Hierarchy.from_dict(cfg["hierarchy"])
            model = gen._build_model(int(cfg["n_tokens"]), int(cfg["max_len"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: invalid configuration ({exc})") from exc
        state = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.arrays.items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{directory}: weights do not fit the configuration ({exc})"
                             ) from exc
        gen.model = model.to(gen.device).eval()
        gen.vocab, gen.hierarchy = vocab, hierarchy
        gen.summary = dict(cfg.get("training_summary", {}))
        gen.history = list(cfg.get("history", []))
        return gen


class TransformerGenerator(TorchGenerator):
    """Causal transformer over category tokens, conditioned by a demographic prefix."""

    name: ClassVar[str] = "transformer"
    readable_versions: ClassVar[tuple[int, ...]] = (1, 2)  # version 2 changed the LSTM only

    def _build_model(self, n_tokens: int, max_len: int) -> TransformerLM | LSTMLM:
        c = self.config
        return TransformerLM(n_tokens, max_len, c.d_model, c.n_layers, c.n_heads, c.dropout)


class LSTMGenerator(TorchGenerator):
    """Multi-layer LSTM over category tokens, conditioned by a demographic prefix."""

    name: ClassVar[str] = "lstm"
    #: One thread: the LSTM's per-time-step kernels are too small to split; on the 2-core
    #: machine 2 intra-op threads took 3x the wall time and 4x the CPU time of one.
    cpu_train_threads: ClassVar[int | None] = 1

    def _build_model(self, n_tokens: int, max_len: int) -> TransformerLM | LSTMLM:
        c = self.config
        return LSTMLM(n_tokens, max_len, c.d_model, c.n_layers, c.dropout)


def _demographics(age: npt.ArrayLike, sex: npt.ArrayLike
                  ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
    """Validate and broadcast requested ages (years) and sexes (0/1 or M/F)."""
    age_arr = np.asarray(age)
    if age_arr.dtype.kind not in "iuf":
        raise ValueError(f"age: expected numbers of years, got dtype {age_arr.dtype}")
    age_arr = age_arr.astype(np.float64)
    bad = ~np.isfinite(age_arr) | (age_arr < 0) | (age_arr > MAX_AGE)
    if bad.any():
        raise ValueError(f"age: impossible age {age_arr[bad].flat[0]!r}; "
                         f"ages must be in 0..{MAX_AGE} years")
    sex_arr = np.asarray(sex)
    if sex_arr.dtype.kind in "iub":
        flat = sex_arr.astype(np.int64).reshape(-1)
        wrong = (flat < 0) | (flat > 1)
        if wrong.any():
            raise ValueError(f"sex: unknown sex value {int(flat[wrong][0])}; expected 0 (M) "
                             "or 1 (F)")
        sex_arr = sex_arr.astype(np.int8)
    else:
        sex_arr = np.vectorize(parse_sex, otypes=[np.int8])(sex_arr)
    a, s = np.broadcast_arrays(age_arr, sex_arr)
    return (np.ascontiguousarray(a.reshape(-1), dtype=np.float32),
            np.ascontiguousarray(s.reshape(-1), dtype=np.int8))


@dataclass(frozen=True, eq=False)
class _Tensors:
    """Token sequences as tensors on the training device, padded once to the longest."""

    tokens: torch.Tensor
    sex: torch.Tensor
    age: torch.Tensor
    lengths: npt.NDArray[np.int64]
    #: What the decoder allows at each position (:func:`allowed_tokens`).
    lower: torch.Tensor
    no_visit_end: torch.Tensor
    no_end: torch.Tensor

    @classmethod
    def of(cls, seqs: TokenSequences, device: torch.device, vocab: TokenVocab,
           summary: dict[str, Any]) -> _Tensors:
        """``summary``: the training data's (its longest visit and most visits are the
        decoder's default limits)."""
        padded = seqs.padded()
        width: int = padded.shape[1]
        lower, no_visit_end, no_end = allowed_tokens(
            padded, vocab.max_repeats, n_tokens=vocab.n_tokens,
            max_codes=int(summary.get("max_categories_per_visit") or width),
            max_visits=int(summary.get("max_visits") or width))
        return cls(tokens=torch.from_numpy(padded).to(device),
                   sex=torch.from_numpy(seqs.sex.astype(np.int64)).to(device),
                   age=torch.from_numpy(seqs.age).to(device),
                   lengths=seqs.lengths,
                   lower=torch.from_numpy(lower).to(device),
                   no_visit_end=torch.from_numpy(no_visit_end).to(device),
                   no_end=torch.from_numpy(no_end).to(device))


#: Batches sorted by length within pools of this many batches (little padding, still random).
POOL_BATCHES = 50


def _length_batches(lengths: npt.NDArray[np.int64], index: npt.NDArray[np.int64],
                    batch_size: int, rng: np.random.Generator | None
                    ) -> list[npt.NDArray[np.int64]]:
    """Batches of ``index`` with sequences of similar length.

    With ``rng``: ``index`` (already shuffled) is cut into pools of :data:`POOL_BATCHES`
    batches, each pool sorted by length and cut into batches, and the batches shuffled.
    Without: all of ``index`` sorted by length (evaluation).
    """
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return []
    pool = index.size if rng is None else batch_size * POOL_BATCHES
    pool_id = np.arange(index.size) // pool
    ordered = index[np.lexsort((lengths[index], pool_id))]
    batches: list[npt.NDArray[np.int64]] = []
    for start in range(0, index.size, pool):
        part = ordered[start:start + pool]
        batches.extend(part[i:i + batch_size] for i in range(0, part.size, batch_size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class _threads:
    """Context manager setting torch's intra-op thread count (restored on exit)."""

    def __init__(self, n: int | None) -> None:
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.n is not None:
            torch.set_num_threads(self.old)
