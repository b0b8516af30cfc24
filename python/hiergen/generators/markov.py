"""The ``markov`` Stage-1 generator: smoothed Markov chains conditioned on sex x age band.

A patient is generated in four vectorised passes over a whole batch:

1. the number of visits, ``P(n_visits | stratum of the first visit)``;
2. the age of every later visit: the previous age plus a gap drawn from the empirical gap
   distribution (visit times or ages of the training data; no gap where the data has only
   one visit per patient, so the age is kept);
3. the number of category tokens of every visit, ``P(length | stratum of the visit)``;
4. the categories, position by position across all visits at once,
   ``P(c_i | c_{i-1}[, c_{i-2}], stratum)``, backing off (Witten-Bell) to
   ``P(c_i | c_{i-1}, sex)``, ``P(c_i | stratum)`` and ``P(c_i | sex)``.

Back-off stays within the sex of the patient (see :mod:`hiergen.generators.markov_tables`),
so a category never seen for one sex is never drawn for it. A visit is a multiset: a category
may recur in a visit at most as many times as it has codes in the hierarchy (Stage 2 draws
that many distinct codes); a draw beyond that is redrawn from the same distribution, and
after a few tries from the exact distribution restricted to the categories still allowed.

Per-token negative log-likelihood (:meth:`MarkovGenerator.log_likelihood`): the tokens of a
patient are its category tokens plus one end marker per visit. The end marker of a visit
carries the visit's length (``-log P(length | stratum)``, which equals the sum of the
per-position continue/stop decisions) and, for the patient's last visit, the number of visits
(``-log P(n_visits | stratum)``). Category tokens are scored with the back-off chain above,
ignoring the renormalisation of the repeat cap (a slight over-estimate of the NLL). Every
probability is mixed with a floor, ``(1 - EPS) * p + EPS * q``, with ``q`` uniform over the
hierarchy's categories for categories and ``2^-(k+1)`` for counts ``k``, so that unseen tokens
of held-out data have a finite cost.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.demographics import MAX_AGE, N_AGE_BANDS, N_STRATA, parse_sex, stratum
from hiergen.errors import DataError, ModelError
from hiergen.generators.base import CategoryPatients
from hiergen.generators.checkpoint import load_checkpoint, save_checkpoint
from hiergen.generators.markov_tables import BackoffTable, CountLevel
from hiergen.hierarchy import Hierarchy

log = logging.getLogger(__name__)

#: Weight of the floor distribution in :meth:`MarkovGenerator.log_likelihood`.
EPS = 1e-6
_N_GAP_QUANTILES = 1001
_TABLES = ("transitions", "lengths", "visits")


def _as_sex(sex: npt.ArrayLike) -> npt.NDArray[np.int8]:
    arr = np.atleast_1d(np.asarray(sex))
    if arr.ndim != 1:
        raise ValueError(f"sex: a 1-D array is expected, got shape {arr.shape}")
    if arr.dtype.kind in "USO":
        return np.fromiter((parse_sex(v) for v in arr), dtype=np.int8, count=arr.size)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"sex: codes 0 (M) / 1 (F) or strings M/F expected, got {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        raise ValueError(f"sex: unknown sex value {arr[bad][0]!r}; expected 0 (M) or 1 (F)")
    return arr.astype(np.int8)


def _as_age(age: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.atleast_1d(np.asarray(age, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"age: a 1-D array is expected, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > MAX_AGE)
    if bad.any():
        raise ValueError(
            f"age: impossible age {arr[bad][0]!r}; ages must be in [0, {MAX_AGE:g}] years"
        )
    return arr


class MarkovGenerator:
    """Smoothed first- (or second-) order Markov model of category sequences.

    Args:
        order: 1 conditions each category on the previous one, 2 on the previous two
            (falling back to order 1 where the pair context is unseen).
        smoothing: multiplier of the Witten-Bell back-off mass (1.0 is plain Witten-Bell;
            larger values trust the more specific contexts less). The defaults (order 2,
            smoothing 4) gave the lowest held-out NLL among the settings tried on NHDS 2010
            (order 1 / 2 x smoothing 0.5-10) with the second-best category pair R2.
        batch_size: patients generated per vectorised batch; every batch has its own
            random stream, so the output for a seed depends on the batch size (it is saved
            with the model).
        max_redraws: redraws of a category that exceeds its repeat cap before falling back
            to the exact restricted distribution.
    """

    name: ClassVar[str] = "markov"

    def __init__(
        self,
        *,
        order: int = 2,
        smoothing: float = 4.0,
        batch_size: int = 1 << 16,
        max_redraws: int = 8,
    ) -> None:
        if order not in (1, 2):
            raise ValueError(f"order: 1 or 2 expected, got {order!r}")
        if not (np.isfinite(smoothing) and smoothing > 0):
            raise ValueError(f"smoothing: must be a positive number, got {smoothing!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size!r}")
        self.order = int(order)
        self.smoothing = float(smoothing)
        self.batch_size = int(batch_size)
        self.max_redraws = int(max_redraws)
        self.hierarchy: Hierarchy | None = None
        self._tables: dict[str, BackoffTable] = {}
        self._gap_quantiles: npt.NDArray[np.float64] = np.zeros(0)
        self._cap: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.summary: dict[str, Any] = {}

    # --- contexts -----------------------------------------------------------------------
    @property
    def n_categories(self) -> int:
        return 0 if self.hierarchy is None else self.hierarchy.n_categories

    def _transition_keys(
        self,
        strata: npt.NDArray[np.integer[Any]],
        prev1: npt.NDArray[np.integer[Any]],
        prev2: npt.NDArray[np.integer[Any]] | None,
    ) -> list[npt.NDArray[np.int64]]:
        """Context keys of every level; ``prev`` ids use ``n_categories`` for "none"."""
        b = np.int64(self.n_categories + 1)
        s = strata.astype(np.int64)
        p1 = prev1.astype(np.int64)
        sex = s // N_AGE_BANDS
        keys = [s * b + p1, sex * b + p1, s, sex, np.zeros_like(s)]
        if self.order == 2:
            assert prev2 is not None
            keys.insert(0, (s * b + prev2.astype(np.int64)) * b + p1)
        return keys

    @staticmethod
    def _count_keys(strata: npt.NDArray[np.integer[Any]]) -> list[npt.NDArray[np.int64]]:
        s = strata.astype(np.int64)
        return [s, s // N_AGE_BANDS, np.zeros_like(s)]

    def _transition_levels_spec(self) -> list[tuple[int, bool]]:
        b = self.n_categories + 1
        spec = [(N_STRATA * b, False), (2 * b, False), (N_STRATA, False), (2, True), (1, True)]
        if self.order == 2:
            spec.insert(0, (N_STRATA * b * b, False))
        return spec

    _COUNT_LEVELS: ClassVar[list[tuple[int, bool]]] = [(N_STRATA, False), (2, True), (1, True)]

    # --- fitting ------------------------------------------------------------------------
    def _category_tokens(self, cohort: Cohort, hierarchy: Hierarchy) -> npt.NDArray[np.int32]:
        try:
            return cohort.category_ids_in(hierarchy).astype(np.int32)
        except KeyError as exc:
            raise DataError(f"cohort: {exc.args[0]} (fit the hierarchy on these codes)") from None

    @staticmethod
    def _visit_strata(cohort: Cohort) -> npt.NDArray[np.int32]:
        try:
            return stratum(cohort.sex, cohort.age)
        except ValueError as exc:
            raise DataError(f"cohort: {exc}") from None

    def _transition_observations(
        self, cohort: Cohort, cats: npt.NDArray[np.int32], vstrata: npt.NDArray[np.int32]
    ) -> list[npt.NDArray[np.int64]]:
        lengths = cohort.visit_lengths
        pos = np.arange(cats.size, dtype=np.int64) - np.repeat(cohort.visit_offsets[:-1], lengths)
        none = np.int32(self.n_categories)
        prev1 = np.full(cats.size, none, dtype=np.int32)
        prev1[1:] = cats[:-1]
        prev1[pos < 1] = none
        prev2 = np.full(cats.size, none, dtype=np.int32)
        prev2[2:] = cats[:-2]
        prev2[pos < 2] = none
        tok_strata = np.repeat(vstrata, lengths)
        return self._transition_keys(tok_strata, prev1, prev2)

    def fit(self, cohort: Cohort, hierarchy: Hierarchy, *, seed: int = 0) -> None:
        """Count the tables from ``cohort`` (categories of ``hierarchy``). ``seed`` is unused:
        fitting is deterministic."""
        del seed
        started = time.perf_counter()
        if cohort.n_patients == 0 or cohort.n_visits == 0 or cohort.n_rows == 0:
            raise DataError(
                f"cohort: empty ({cohort.n_patients} patients, {cohort.n_visits} visits, "
                f"{cohort.n_rows} codes); the markov generator needs training data"
            )
        self.hierarchy = hierarchy
        cats = self._category_tokens(cohort, hierarchy)
        n_distinct = int(np.unique(cats).size)
        if n_distinct < 2:
            only = hierarchy.categories[int(cats[0])]
            raise DataError(
                f"cohort: holds a single category ({only!r}); a Stage-1 model needs at least "
                "2 distinct categories to learn from"
            )
        vstrata = self._visit_strata(cohort)
        c = hierarchy.n_categories

        keys = self._transition_observations(cohort, cats, vstrata)
        levels = [
            CountLevel.from_observations(k, cats, n_ctx, c, terminal=term)
            for k, (n_ctx, term) in zip(keys, self._transition_levels_spec(), strict=True)
        ]
        self._tables["transitions"] = BackoffTable(levels, c, self.smoothing)

        lengths = cohort.visit_lengths
        max_len = int(lengths.max())
        self._tables["lengths"] = self._count_table(vstrata, lengths, max_len + 1)

        nv = cohort.visits_per_patient
        has_visits = nv > 0
        first = cohort.patient_offsets[:-1][has_visits]
        self._tables["visits"] = self._count_table(
            vstrata[first], nv[has_visits], int(nv.max()) + 1
        )

        gaps = self._gaps(cohort)
        if gaps.size:
            self._gap_quantiles = np.quantile(gaps, np.linspace(0.0, 1.0, _N_GAP_QUANTILES))
        else:
            self._gap_quantiles = np.zeros(0)
        self._cap = np.diff(hierarchy.offsets).astype(np.int64)
        self.summary = {
            "n_patients": cohort.n_patients,
            "n_visits": cohort.n_visits,
            "n_category_tokens": int(cats.size),
            "n_distinct_categories": n_distinct,
            "mean_visits_per_patient": float(nv.mean()),
            "mean_categories_per_visit": float(lengths.mean()),
            "max_categories_per_visit": max_len,
            "n_gaps": int(gaps.size),
            "hierarchy_kind": hierarchy.kind,
        }
        log.info(
            "markov: fitted on %d patients, %d visits, %d category tokens in %.2f s",
            cohort.n_patients, cohort.n_visits, cats.size, time.perf_counter() - started,
        )

    def _count_table(
        self, strata: npt.NDArray[np.int32], values: npt.NDArray[np.integer[Any]], n_values: int
    ) -> BackoffTable:
        keys = self._count_keys(strata)
        levels = [
            CountLevel.from_observations(k, values, n_ctx, n_values, terminal=term)
            for k, (n_ctx, term) in zip(keys, self._COUNT_LEVELS, strict=True)
        ]
        return BackoffTable(levels, n_values, self.smoothing)

    @staticmethod
    def _gaps(cohort: Cohort) -> npt.NDArray[np.float64]:
        """Years between consecutive visits of a patient (times if present, else ages)."""
        later = np.ones(cohort.n_visits, dtype=bool)
        later[cohort.patient_offsets[:-1][cohort.visits_per_patient > 0]] = False
        idx = np.flatnonzero(later)
        if idx.size == 0:
            return np.zeros(0)
        if cohort.time is not None:
            t = cohort.time.astype("datetime64[s]")
            known = ~np.isnat(t[idx]) & ~np.isnat(t[idx - 1])
            idx = idx[known]
            seconds = (t[idx] - t[idx - 1]).astype(np.int64).astype(np.float64)
            gaps = seconds / (365.25 * 86400.0)
        else:
            age = cohort.age.astype(np.float64)
            gaps = age[idx] - age[idx - 1]
        return np.clip(gaps, 0.0, None)

    # --- sampling -----------------------------------------------------------------------
    def _require_fitted(self) -> Hierarchy:
        if self.hierarchy is None or not self._tables:
            raise ModelError("markov: the model is not fitted; call fit() or load() first")
        return self.hierarchy

    def sample(self, age: npt.ArrayLike, sex: npt.ArrayLike, *, seed: int) -> CategoryPatients:
        """One patient per ``(age, sex)`` pair (scalars broadcast), reproducible for ``seed``.

        ``sex`` holds 0 (male) / 1 (female) or strings such as ``"M"``/``"F"``; ``age`` is the
        age in years at the first visit.
        """
        self._require_fitted()
        ages = _as_age(age)
        sexes = _as_sex(sex)
        if ages.size != sexes.size:
            if ages.size == 1:
                ages = np.full(sexes.size, ages[0])
            elif sexes.size == 1:
                sexes = np.full(ages.size, sexes[0], dtype=np.int8)
            else:
                raise ValueError(
                    f"age, sex: lengths differ ({ages.size} and {sexes.size}); one value per "
                    "patient or a scalar expected"
                )
        n = ages.size
        n_batches = max(1, -(-n // self.batch_size))
        children = np.random.SeedSequence(seed).spawn(n_batches)
        parts = []
        for b, child in enumerate(children):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            rng = np.random.default_rng(child)
            parts.append(self._sample_batch(ages[lo:hi], sexes[lo:hi], rng))
        return _concat(parts)

    def _sample_batch(
        self, ages: npt.NDArray[np.float64], sexes: npt.NDArray[np.int8], rng: np.random.Generator
    ) -> CategoryPatients:
        n = ages.size
        s0 = stratum(sexes, ages)
        nv = self._tables["visits"].sample(self._count_keys(s0), rng).astype(np.int64)
        patient_offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nv, out=patient_offsets[1:])
        n_visits = int(patient_offsets[-1])
        visit_patient = np.repeat(np.arange(n), nv)
        visit_age = ages[visit_patient]
        if self._gap_quantiles.size and n_visits > n:
            first = np.zeros(n_visits, dtype=bool)
            first[patient_offsets[:-1][nv > 0]] = True
            gap = np.interp(
                rng.random(n_visits), np.linspace(0.0, 1.0, self._gap_quantiles.size),
                self._gap_quantiles,
            )
            gap[first] = 0.0
            cum = np.cumsum(gap)
            visit_age = visit_age + cum - np.repeat(cum[patient_offsets[:-1]], nv)
            np.minimum(visit_age, MAX_AGE, out=visit_age)
        visit_sex = sexes[visit_patient]
        vstrata = stratum(visit_sex, visit_age)
        lengths = self._tables["lengths"].sample(self._count_keys(vstrata), rng).astype(np.int64)
        cats, lengths = self._sample_categories(vstrata, lengths, rng)
        visit_offsets = np.zeros(n_visits + 1, dtype=np.int64)
        np.cumsum(lengths, out=visit_offsets[1:])
        return CategoryPatients(
            sex=sexes.astype(np.int8),
            age=ages.astype(np.float32),
            patient_offsets=patient_offsets,
            visit_offsets=visit_offsets,
            categories=cats,
            visit_age=visit_age.astype(np.float32),
        )

    def _sample_categories(
        self,
        vstrata: npt.NDArray[np.int32],
        lengths: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Categories of all visits, stepping position by position over the visits that are
        still open (sorted longest first, so the open visits are always a prefix)."""
        table = self._tables["transitions"]
        n_visits = lengths.size
        max_len = int(lengths.max()) if n_visits else 0
        order = np.argsort(-lengths, kind="stable")
        len_sorted = lengths[order]
        s_sorted = vstrata[order]
        buf = np.full((n_visits, max(max_len, 1)), -1, dtype=np.int32)
        none = np.int32(self.n_categories)
        # open_at[i] = number of visits with length > i (a prefix of the sorted visits).
        open_at = n_visits - np.searchsorted(len_sorted[::-1], np.arange(max_len), side="right")
        for i in range(max_len):
            m = int(open_at[i])
            strata = s_sorted[:m]
            prev1 = buf[:m, i - 1] if i >= 1 else np.full(m, none, dtype=np.int32)
            prev2 = buf[:m, i - 2] if i >= 2 else np.full(m, none, dtype=np.int32)
            prev1 = np.where(prev1 < 0, none, prev1)
            prev2 = np.where(prev2 < 0, none, prev2)
            keys = self._transition_keys(strata, prev1, prev2)
            tok = table.sample(keys, rng)
            if i >= 1:
                tok = self._enforce_cap(buf[:m, :i], tok, keys, rng)
            buf[:m, i] = tok
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n_visits)
        rows = buf[inverse]
        mask = (np.arange(buf.shape[1]) < lengths[:, None]) & (rows >= 0)
        return rows[mask].astype(np.int32), mask.sum(axis=1).astype(np.int64)

    def _over_cap(self, earlier: npt.NDArray[np.int32], tok: npt.NDArray[np.int32]) -> Any:
        seen = (earlier == tok[:, None]).sum(axis=1)
        return seen >= self._cap[tok]

    def _enforce_cap(
        self,
        earlier: npt.NDArray[np.int32],
        tok: npt.NDArray[np.int32],
        keys: list[npt.NDArray[np.int64]],
        rng: np.random.Generator,
    ) -> npt.NDArray[np.int32]:
        table = self._tables["transitions"]
        bad = np.flatnonzero(self._over_cap(earlier, tok))
        for _ in range(self.max_redraws):
            if bad.size == 0:
                return tok
            redraw = table.sample([k[bad] for k in keys], rng)
            tok[bad] = redraw
            still = self._over_cap(earlier[bad], redraw)
            bad = bad[still]
        for j in bad:  # rare: the exact distribution restricted to the categories left
            p = table.distribution([int(k[j]) for k in keys])
            counts = np.bincount(earlier[j][earlier[j] >= 0], minlength=p.size)
            p[counts >= self._cap] = 0.0
            total = p.sum()
            tok[j] = rng.choice(p.size, p=p / total) if total > 0 else -1
        return tok

    # --- likelihood ---------------------------------------------------------------------
    def nll_parts(self, cohort: Cohort) -> dict[str, float]:
        """Negative log-likelihood (nats) of ``cohort`` by part, and the token counts."""
        hierarchy = self._require_fitted()
        if cohort.n_visits == 0:
            raise DataError("cohort: no visits to score")
        cats = self._category_tokens(cohort, hierarchy)
        vstrata = self._visit_strata(cohort)
        keys = self._transition_observations(cohort, cats, vstrata)
        p_cat = self._tables["transitions"].prob(keys, cats)
        nll_cat = -np.log((1 - EPS) * p_cat + EPS / hierarchy.n_categories).sum()

        lengths = cohort.visit_lengths
        nll_len = self._count_nll("lengths", vstrata, lengths)
        nv = cohort.visits_per_patient
        has = nv > 0
        first = cohort.patient_offsets[:-1][has]
        nll_nv = self._count_nll("visits", vstrata[first], nv[has])
        return {
            "categories": float(nll_cat),
            "visit_lengths": float(nll_len),
            "visits_per_patient": float(nll_nv),
            "total": float(nll_cat + nll_len + nll_nv),
            "n_category_tokens": float(cats.size),
            "n_end_markers": float(cohort.n_visits),
            "n_tokens": float(cats.size + cohort.n_visits),
        }

    def _count_nll(
        self, table_name: str, strata: npt.NDArray[np.int32], values: npt.NDArray[np.int64]
    ) -> float:
        table = self._tables[table_name]
        inside = values < table.n_tokens
        p = np.zeros(values.size)
        p[inside] = table.prob(
            [k[inside] for k in self._count_keys(strata)], values[inside]
        )
        floor = np.exp2(-(values.astype(np.float64) + 1.0))
        return float(-np.log((1 - EPS) * p + EPS * floor).sum())

    def log_likelihood(self, cohort: Cohort) -> tuple[float, int]:
        """``(total NLL in nats, number of tokens)``; tokens are category tokens plus one end
        marker per visit (see the module docstring). Per-token NLL is their ratio."""
        parts = self.nll_parts(cohort)
        return parts["total"], int(parts["n_tokens"])

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        """Write ``model.safetensors`` and ``config.json`` to ``directory``."""
        hierarchy = self._require_fitted()
        arrays: dict[str, npt.NDArray[Any]] = {"gap_quantiles": self._gap_quantiles}
        for name in _TABLES:
            arrays.update(self._tables[name].to_arrays(name))
        config = {
            "order": self.order,
            "smoothing": self.smoothing,
            "batch_size": self.batch_size,
            "max_redraws": self.max_redraws,
            "tables": {name: self._tables[name].to_config() for name in _TABLES},
            "hierarchy": hierarchy.to_dict(),
            "training_summary": self.summary,
        }
        save_checkpoint(directory, self.name, config, arrays)

    @classmethod
    def load(cls, directory: Path | str) -> MarkovGenerator:
        """Read a model written by :meth:`save` (``ModelError`` when it cannot)."""
        ckpt = load_checkpoint(directory, kind=cls.name, required=("gap_quantiles",))
        cfg = ckpt.config
        try:
            model = cls(
                order=int(cfg["order"]),
                smoothing=float(cfg["smoothing"]),
                batch_size=int(cfg["batch_size"]),
                max_redraws=int(cfg["max_redraws"]),
            )
            model.hierarchy = Hierarchy.from_dict(cfg["hierarchy"])
            for name in _TABLES:
                model._tables[name] = BackoffTable.from_saved(
                    name, cfg["tables"][name], ckpt.arrays
                )
            if model._tables["transitions"].n_tokens != model.hierarchy.n_categories:
                raise ValueError("transition table and hierarchy disagree on the categories")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{directory}: inconsistent markov checkpoint ({exc})") from exc
        model._gap_quantiles = np.asarray(ckpt.arrays["gap_quantiles"], dtype=np.float64)
        model._cap = np.diff(model.hierarchy.offsets).astype(np.int64)
        model.summary = dict(cfg.get("training_summary", {}))
        return model


def _concat(parts: list[CategoryPatients]) -> CategoryPatients:
    if len(parts) == 1:
        return parts[0]
    po = [np.zeros(1, dtype=np.int64)]
    vo = [np.zeros(1, dtype=np.int64)]
    n_v = n_c = 0
    for p in parts:
        po.append(p.patient_offsets[1:] + n_v)
        vo.append(p.visit_offsets[1:] + n_c)
        n_v += p.n_visits
        n_c += int(p.categories.size)
    return CategoryPatients(
        sex=np.concatenate([p.sex for p in parts]),
        age=np.concatenate([p.age for p in parts]),
        patient_offsets=np.concatenate(po),
        visit_offsets=np.concatenate(vo),
        categories=np.concatenate([p.categories for p in parts]),
        visit_age=np.concatenate([p.visit_age for p in parts]),
    )


__all__ = ["EPS", "MarkovGenerator"]
