"""The ``markov`` Stage-1 generator: smoothed Markov chains conditioned on sex x age band,
with a latent class per visit.

A patient is generated in five vectorised passes over a whole batch:

1. the number of visits, ``P(n_visits | stratum of the first visit)``;
2. the age of every later visit: the previous age plus a gap drawn from the empirical gap
   distribution (visit times or ages of the training data; no gap where the data has only
   one visit per patient, so the age is kept);
3. the class of every visit, ``P(class | stratum, class of the patient's previous visit)``
   (visit classes: :mod:`hiergen.generators.markov_classes`, a Bernoulli mixture fitted by
   EM that carries the visit's comorbidity profile);
4. the number of category tokens of every visit, ``P(length | stratum, class)``;
5. the categories, position by position across all visits at once, through a back-off
   chain of contexts (:mod:`hiergen.generators.markov_context`; by default
   ``stratum.cls.first.prev1 -> stratum.cls.len.prev1 -> stratum.cls.prev1 ->
   stratum.len.prev1 -> stratum.prev1 -> stratum.cls -> stratum``, Witten-Bell).

Strata are sex x the model's own age bands (:data:`AGE_EDGES`: those of
:mod:`hiergen.demographics` split at 10 years), and every level of the default chain stays
within the stratum (a stratum level is terminal), so a category is drawn only in a stratum
where the training data has it: no newborn codes for adults, no pregnancy for men or young
children (the first version backed off to ``sex.prev1`` and leaked newborn codes into 0.7%
of adult NHDS visits). The chain is trained on every visit's categories sorted most frequent
in the visit's stratum first (``token_order="frequency"``): a canonical order that turns the
visit's set into a sequence whose neighbours are the informative co-occurrences.

A visit is a multiset: a category may recur in a visit at most as many times as it has codes
in the hierarchy (Stage 2 draws that many distinct codes); a draw beyond that is redrawn
from the same distribution, and after a few tries from the exact distribution restricted to
the categories still allowed.

Per-token negative log-likelihood (:meth:`MarkovGenerator.log_likelihood`): the tokens of a
patient are its category tokens plus one end marker per visit. The end marker of a visit
carries the visit's length and, for the patient's last visit, the number of visits. Category
tokens are scored in the model's canonical order (so the NLL is that of each visit's
multiset of categories, not of the order the data listed them in), ignoring the
renormalisation of the repeat cap (a slight over-estimate). Visit classes are summed out
exactly: a forward pass over each patient's visits (the classes form a hidden Markov chain).
Every probability is mixed with a floor, ``(1 - EPS) * p + EPS * q``, with ``q`` uniform
over the hierarchy's categories for categories and ``2^-(k+1)`` for counts ``k``, so that
unseen tokens of held-out data have a finite cost.

Measured on the NHDS 2010 protocol (80/20 split, seed 0; Stage 2 ``frequency``), against
the first version: category pair R2 0.927 -> 0.979 (ceiling 0.993), category unigram R2
0.988 -> 0.997, code pair R2 0.837 -> 0.909 (0.913 with 64 visit classes instead of 32),
newborn/pregnancy codes at impossible ages 0.73% -> 0.05% (0.03% with 64 classes) of
visits (real: 0.03%).

Own-code categories (the shipped default model, ``scripts/train_default_model.py``): with a
hierarchy where codes held by at least 1,000 training visits are categories of their own
(``Hierarchy.from_codes(own_categories=frequent_codes(...))``: 151 codes on NHDS, 1,267
categories instead of 1,116), Stage 1 carries the strongest code-code links itself and Stage 2
the rest. Alone it raised code pair R2 but lowered category pair R2 (0.979 -> 0.970); what
recovers it: ``group_parents`` (a split code stays next to its category in the canonical
order), back-off levels on the parents (features ``pfirst``, ``pprev1``), the most probable
visit class per training visit (``class_assignment="map"``) and a top level with ``prev2``.
On the protocol (context Stage 2, 15,000 tables; 3 generation seeds x 3 fit seeds): code pair
R2 0.959-0.960 (was 0.938), category pair R2 0.980-0.981 (was 0.979), exact copies 13.6-14.1%
(was 12.5%; held-out 15.3%); trained on all of NHDS the checkpoint takes 7.3 MB (3.7 MB; the
parent levels are recomputed at load from the ``first``/``prev1`` level) and Stage 1 samples
0.59x as fast (201,000 against 339,000 patients/s in one run of ``bench_generators.py``).
Not kept: 96 or 128 classes, more EM iterations, smoothing 1 or 3, splitting codes above 200,
500 or 3,000 visits, the ``principal`` order, a least-frequent-first order.
Repeat-cap redraws are drawn in one batch (rejection sampling, all rounds in one walk of the
chain) with a vectorised exact fallback: split codes have a cap of 1, so redraws are 25 times
as frequent as with plain categories.

Checkpoints (format 3) hold only the transition levels that are not projections of another
level, in the narrowest integer types (:mod:`hiergen.generators.markov_tables`): the
default configuration trained on all of NHDS 2010 takes 3.7 MB instead of 28 MB in format 2
(4.2 MB with 64 visit classes, the shipped default model), and loads to exactly the same
tables (the same patients for a seed)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from hiergen.cohort import Cohort
from hiergen.demographics import MAX_AGE, parse_sex, stratum
from hiergen.errors import DataError, ModelError
from hiergen.generators.base import CategoryPatients
from hiergen.generators.checkpoint import load_checkpoint, save_checkpoint
from hiergen.generators.markov_classes import fit_visit_classes
from hiergen.generators.markov_context import (
    DEFAULT_CONTEXT,
    ORDER1_CONTEXT,
    context_keys,
    derivable_levels,
    feature_sizes,
    is_terminal,
    length_bucket,
    level_name,
    n_contexts,
    parse_context,
    projection,
    used_features,
)
from hiergen.generators.markov_tables import (
    BackoffTable,
    CountLevel,
    LazyKeys,
    pack_uint,
    unpack_uint,
)
from hiergen.hierarchy import Hierarchy

log = logging.getLogger(__name__)


#: Weight of the floor distribution in :meth:`MarkovGenerator.log_likelihood`.
EPS = 1e-6
_N_GAP_QUANTILES = 1001
_TABLES = ("transitions", "lengths", "visits")
#: Elements per vectorised call of the exact fallback of the repeat cap.
_FALLBACK_CHUNK = 256
#: Version of the markov checkpoint's contents (config keys and arrays), checked on load.
#: 1: order-2 chain with age-pooled back-off; 2: named context chains, model age bands,
#: visit classes, per-stratum token order; 3: compact storage (narrowest integer types,
#: transition levels that are projections of a stored level recomputed at load).
MARKOV_FORMAT = 3
#: Orders of the categories of a visit the chain is trained on: as given, the first one (the
#: principal diagnosis) then the rest most frequent first, or all most frequent first.
TOKEN_ORDERS = ("given", "principal", "frequency")
#: Lower edges of the model's age bands (years): those of ``hiergen.demographics`` split at 10,
#: so that categories of adolescents (pregnancy) are not drawn for young children.
AGE_EDGES = (0.0, 1.0, 10.0, 18.0, 40.0, 65.0, 80.0)


def parent_categories(hierarchy: Hierarchy) -> npt.NDArray[np.int64]:
    """Id of every category's parent: a code split off its category by
    ``Hierarchy.from_codes(own_categories=...)`` (``250.00``) has the category it came from
    (``250``, :attr:`Hierarchy.parent_labels`); numbered densely in order of first
    appearance."""
    names: dict[str, int] = {}
    out = np.empty(hierarchy.n_categories, dtype=np.int64)
    for i, cat in enumerate(hierarchy.parent_labels):
        out[i] = names.setdefault(cat, len(names))
    return out


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
    """Smoothed Markov model of category sequences with visit classes.

    Args:
        order: chooses the default chain when ``context`` is None: 2 the full chain with
            visit classes (:data:`~hiergen.generators.markov_context.DEFAULT_CONTEXT`), 1 the
            small ``stratum.prev1 -> stratum`` chain without classes.
        smoothing: multiplier of the Witten-Bell back-off mass (1.0 is plain Witten-Bell;
            larger values trust the more specific contexts less). 2 gave the best category
            pair R2 with the default chain on NHDS 2010 among 1, 2 and 4 (1: higher NLL).
        context: the back-off chain, dotted feature names per level (comma-separated string
            or a sequence), see :mod:`hiergen.generators.markov_context`; ``prevvisit``
            conditions on the first category of the patient's previous visit.
        age_edges: lower edges of the model's age bands (years), starting at 0.
        token_order: ``"frequency"`` (default), ``"principal"`` (the first category kept
            first) or ``"given"`` (as in the data): the order the chain is trained on.
        n_classes: visit classes (used when a level holds ``cls``). On a data set the size
            of NHDS 2010, 64 is better than 32 (protocol, seeds 0 and 1: held-out NLL/token
            3.479 vs 3.493-3.495, code pair R2 0.912-0.913 vs 0.906-0.909, category pair R2
            0.979 vs 0.976-0.979; 15% slower sampling; 96 gave nothing more), and the shipped
            default model uses 64; on small cohorts more classes thin the class transitions
            out, so the default stays 32.
        class_iterations: EM iterations of the class mixture.
        group_parents: in the canonical order, keep the categories of one parent together
            (a code split off its category by ``Hierarchy.from_codes(own_categories=...)``
            next to the rest of the category, in the place of the parent's frequency);
            without it a split code is ranked by its own frequency.
        class_assignment: the class of each training visit: ``"sample"`` (drawn from its
            posterior) or ``"map"`` (the most probable class, which gives sharper
            class-conditioned tables).
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
        smoothing: float = 2.0,
        batch_size: int = 1 << 16,
        max_redraws: int = 8,
        context: str | Sequence[str] | None = None,
        age_edges: Sequence[float] = AGE_EDGES,
        token_order: str = "frequency",
        n_classes: int = 32,
        class_iterations: int = 12,
        group_parents: bool = False,
        class_assignment: str = "sample",
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
        if context is None:
            context = DEFAULT_CONTEXT if order == 2 else ORDER1_CONTEXT
        self.context = parse_context(context)
        edges = tuple(float(e) for e in age_edges)
        increasing = all(b > a for a, b in zip(edges, edges[1:], strict=False))
        if not edges or edges[0] != 0.0 or not increasing:
            raise ValueError(
                f"age_edges: increasing lower band edges starting at 0 expected, got {edges!r}"
            )
        self.age_edges = edges
        if token_order not in TOKEN_ORDERS:
            raise ValueError(
                f"token_order: one of {', '.join(TOKEN_ORDERS)} expected, got {token_order!r}"
            )
        self.token_order = token_order
        self._rank: npt.NDArray[np.int32] = np.zeros((0, 0), dtype=np.int32)
        if n_classes < 1:
            raise ValueError(f"n_classes: must be >= 1, got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.class_iterations = int(class_iterations)
        self.group_parents = bool(group_parents)
        if class_assignment not in ("sample", "map"):
            raise ValueError(
                f"class_assignment: 'sample' or 'map' expected, got {class_assignment!r}"
            )
        self.class_assignment = class_assignment
        #: parent of every category id, and of "none" (``n_categories``): ``n_parents``
        self._parent: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._train_classes: npt.NDArray[np.int32] | None = None
        self.hierarchy: Hierarchy | None = None
        self._tables: dict[str, BackoffTable] = {}
        self._gap_quantiles: npt.NDArray[np.float64] = np.zeros(0)
        self._cap: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.summary: dict[str, Any] = {}

    # --- contexts -----------------------------------------------------------------------
    @property
    def n_categories(self) -> int:
        return 0 if self.hierarchy is None else self.hierarchy.n_categories

    def _transition_keys(self, values: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[np.int64]]:
        """Context keys of every level from the per-token feature arrays (``prev1`` etc. use
        ``n_categories`` for "none")."""
        return context_keys(
            self.context, values, self.n_categories, self.n_bands, self.n_classes,
            self.n_parents,
        )

    def _lazy_keys(self, values: dict[str, npt.NDArray[Any]], n: int) -> LazyKeys:
        """Context keys computed per level only for the elements that reach the level."""
        sizes = feature_sizes(self.n_categories, self.n_bands, self.n_classes, self.n_parents)
        if "sex" in used_features(self.context):
            values = {**values, "sex": np.asarray(values["stratum"]) // self.n_bands}

        def at(level: int, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            key = np.zeros(idx.size, dtype=np.int64)
            for f in self.context[level]:
                key *= np.int64(sizes[f])
                key += values[f][idx]
            return key

        return LazyKeys(n, len(self.context), at)

    def _transition_levels_spec(self) -> list[tuple[int, bool]]:
        c = self.n_categories
        return [
            (n_contexts(f, c, self.n_bands, self.n_classes, self.n_parents), is_terminal(f))
            for f in self.context
        ]

    @property
    def n_parents(self) -> int:
        """Number of parent categories (features ``pprev1``, ``pfirst``)."""
        return int(self._parent[-1])

    def _set_hierarchy(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        parent = parent_categories(hierarchy)
        n_parents = int(parent.max()) + 1 if parent.size else 0
        self._parent = np.append(parent, n_parents).astype(np.int64)

    @property
    def n_bands(self) -> int:
        return len(self.age_edges)

    def strata(self, sex: npt.ArrayLike, age: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """The model's stratum of each visit: ``sex * n_bands + band`` with its own age bands
        (:attr:`age_edges`, finer than :mod:`hiergen.demographics`' by default)."""
        stratum(sex, age)  # validates sex codes and ages
        band = np.searchsorted(np.asarray(self.age_edges), np.asarray(age), side="right") - 1
        return (np.asarray(sex, dtype=np.int32) * self.n_bands + band).astype(np.int32)

    def _count_keys(
        self,
        strata: npt.NDArray[np.integer[Any]],
        classes: npt.NDArray[np.integer[Any]] | None = None,
    ) -> list[npt.NDArray[np.int64]]:
        """Keys of a count table: ``[stratum.cls,] stratum, sex, all``."""
        s = strata.astype(np.int64)
        keys = [s, s // self.n_bands, np.zeros_like(s)]
        if classes is not None:
            keys.insert(0, s * np.int64(self.n_classes) + classes.astype(np.int64))
        return keys

    def _count_levels(self, with_classes: bool = False) -> list[tuple[int, bool]]:
        levels = [(2 * self.n_bands, False), (2, True), (1, True)]
        if with_classes:
            levels.insert(0, (2 * self.n_bands * self.n_classes, False))
        return levels

    def _class_keys(
        self, strata: npt.NDArray[np.integer[Any]], prev_cls: npt.NDArray[np.integer[Any]]
    ) -> list[npt.NDArray[np.int64]]:
        """Keys of ``P(class | stratum, class of the patient's previous visit)``, backing off
        to the count-table chain (``prev_cls == n_classes`` for a first visit)."""
        s = strata.astype(np.int64)
        return [s * np.int64(self.n_classes + 1) + prev_cls.astype(np.int64), *self._count_keys(s)]

    def _class_levels(self) -> list[tuple[int, bool]]:
        return [(2 * self.n_bands * (self.n_classes + 1), False), *self._count_levels()]

    def _previous_class(
        self, patient_offsets: npt.NDArray[np.int64], classes: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.int32]:
        prev = np.full(classes.size, self.n_classes, dtype=np.int32)
        prev[1:] = classes[:-1]
        nv = np.diff(patient_offsets)
        prev[patient_offsets[:-1][nv > 0]] = self.n_classes
        return prev

    @property
    def _uses_classes(self) -> bool:
        return "cls" in used_features(self.context)

    # --- fitting ------------------------------------------------------------------------
    def _category_tokens(self, cohort: Cohort, hierarchy: Hierarchy) -> npt.NDArray[np.int32]:
        try:
            return cohort.category_ids_in(hierarchy).astype(np.int32)
        except KeyError as exc:
            raise DataError(f"cohort: {exc.args[0]} (fit the hierarchy on these codes)") from None

    def _stratum_ranks(
        self, cohort: Cohort, cats: npt.NDArray[np.int32], n_categories: int
    ) -> npt.NDArray[np.int32]:
        """Rank of every category in every stratum: most frequent in the stratum first, ties
        broken by the overall frequency (so the order is defined for unseen categories too)."""
        n_strata = 2 * self.n_bands
        tok_strata = np.repeat(self._visit_strata(cohort), cohort.visit_lengths)
        by_stratum = np.bincount(
            tok_strata.astype(np.int64) * n_categories + cats, minlength=n_strata * n_categories
        ).reshape(n_strata, n_categories)
        overall = by_stratum.sum(axis=0)
        rank = np.empty((n_strata, n_categories), dtype=np.int32)
        parent = self._parent[:-1] if self.group_parents else None
        for s in range(n_strata):
            if parent is None:
                order = np.lexsort((-overall, -by_stratum[s]))
            else:  # codes split off a category stay next to it, in the category's place
                p_count = np.bincount(parent, weights=by_stratum[s])[parent]
                p_overall = np.bincount(parent, weights=overall)[parent]
                order = np.lexsort((-overall, -by_stratum[s], parent, -p_overall, -p_count))
            rank[s, order] = np.arange(n_categories, dtype=np.int32)
        return rank

    def _canonical(self, cohort: Cohort, cats: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        """The categories of every visit in the model's order (:attr:`token_order`)."""
        if self.token_order == "given" or cats.size == 0:
            return cats
        lengths = cohort.visit_lengths
        visit = np.repeat(np.arange(cohort.n_visits), lengths)
        tok_strata = np.repeat(self._visit_strata(cohort), lengths)
        rank = self._rank[tok_strata, cats].astype(np.int64)
        if self.token_order == "principal":
            pos = np.arange(cats.size) - np.repeat(cohort.visit_offsets[:-1], lengths)
            rank = np.where(pos == 0, -1, rank)
        perm = np.lexsort((rank, visit))
        return cats[perm]

    def _visit_strata(self, cohort: Cohort) -> npt.NDArray[np.int32]:
        try:
            return self.strata(cohort.sex, cohort.age)
        except ValueError as exc:
            raise DataError(f"cohort: {exc}") from None

    def _transition_observations(
        self,
        cohort: Cohort,
        cats: npt.NDArray[np.int32],
        vstrata: npt.NDArray[np.int32],
        classes: npt.NDArray[np.int32] | None = None,
    ) -> list[npt.NDArray[np.int64]]:
        lengths = cohort.visit_lengths
        starts = np.repeat(cohort.visit_offsets[:-1], lengths)
        pos = np.arange(cats.size, dtype=np.int64) - starts
        none = np.int32(self.n_categories)
        used = used_features(self.context)
        values: dict[str, npt.NDArray[Any]] = {"stratum": np.repeat(vstrata, lengths)}
        for lag in (1, 2):
            name = f"prev{lag}"
            if name in used or f"p{name}" in used:
                prev = np.full(cats.size, none, dtype=np.int32)
                prev[lag:] = cats[:-lag]
                prev[pos < lag] = none
                values[name] = prev
                if f"p{name}" in used:
                    values[f"p{name}"] = self._parent[prev]
        if "first" in used or "pfirst" in used:
            first = cats[np.minimum(starts, max(cats.size - 1, 0))].astype(np.int32)
            first[pos < 1] = none
            values["first"] = first
            if "pfirst" in used:
                values["pfirst"] = self._parent[first]
        tok_len = np.repeat(lengths, lengths)
        if "len" in used:
            values["len"] = length_bucket(tok_len)
        if "left" in used:
            values["left"] = length_bucket(tok_len - pos)
        if "prevvisit" in used:
            values["prevvisit"] = np.repeat(self._previous_visit_first(cohort, cats), lengths)
        if "cls" in used:
            assert classes is not None
            values["cls"] = np.repeat(classes, lengths)
        return self._transition_keys(values)

    def _previous_visit_first(
        self, cohort: Cohort, cats: npt.NDArray[np.int32]
    ) -> npt.NDArray[np.int32]:
        """First category of the patient's previous visit, per visit ("none" for first visits
        and after an empty visit)."""
        none = np.int32(self.n_categories)
        lengths = cohort.visit_lengths
        first_cat = np.full(cohort.n_visits, none, dtype=np.int32)
        has = lengths > 0
        first_cat[has] = cats[cohort.visit_offsets[:-1][has]]
        out = np.full(cohort.n_visits, none, dtype=np.int32)
        out[1:] = first_cat[:-1]
        out[cohort.patient_offsets[:-1][cohort.visits_per_patient > 0]] = none
        return out

    def fit(self, cohort: Cohort, hierarchy: Hierarchy, *, seed: int = 0) -> None:
        """Count the tables from ``cohort`` (categories of ``hierarchy``); ``seed`` drives the
        visit classes (their EM start and the class drawn for each training visit)."""
        started = time.perf_counter()
        if cohort.n_patients == 0 or cohort.n_visits == 0 or cohort.n_rows == 0:
            raise DataError(
                f"cohort: empty ({cohort.n_patients} patients, {cohort.n_visits} visits, "
                f"{cohort.n_rows} codes); the markov generator needs training data"
            )
        self._set_hierarchy(hierarchy)
        cats = self._category_tokens(cohort, hierarchy)
        self._rank = self._stratum_ranks(cohort, cats, hierarchy.n_categories)
        cats = self._canonical(cohort, cats)
        n_distinct = int(np.unique(cats).size)
        if n_distinct < 2:
            only = hierarchy.categories[int(cats[0])]
            raise DataError(
                f"cohort: holds a single category ({only!r}); a Stage-1 model needs at least "
                "2 distinct categories to learn from"
            )
        vstrata = self._visit_strata(cohort)
        c = hierarchy.n_categories

        self._tables = {}
        classes = None
        if self._uses_classes:
            classes = fit_visit_classes(
                cohort.visit_offsets, cats, c, self.n_classes,
                iterations=self.class_iterations, seed=seed, assign=self.class_assignment,
            )
            prev_cls = self._previous_class(cohort.patient_offsets, classes)
            keys_c = self._class_keys(vstrata, prev_cls)
            levels_c = [
                CountLevel.from_observations(k, classes, n_ctx, self.n_classes, terminal=term)
                for k, (n_ctx, term) in zip(keys_c, self._class_levels(), strict=True)
            ]
            self._tables["classes"] = BackoffTable(levels_c, self.n_classes, self.smoothing)
        keys = self._transition_observations(cohort, cats, vstrata, classes)
        levels = [
            CountLevel.from_observations(k, cats, n_ctx, c, terminal=term)
            for k, (n_ctx, term) in zip(keys, self._transition_levels_spec(), strict=True)
        ]
        self._tables["transitions"] = BackoffTable(levels, c, self.smoothing)

        lengths = cohort.visit_lengths
        max_len = int(lengths.max())
        self._tables["lengths"] = self._count_table(vstrata, lengths, max_len + 1, classes)

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
        self,
        strata: npt.NDArray[np.int32],
        values: npt.NDArray[np.integer[Any]],
        n_values: int,
        classes: npt.NDArray[np.int32] | None = None,
    ) -> BackoffTable:
        keys = self._count_keys(strata, classes)
        spec = self._count_levels(classes is not None)
        levels = [
            CountLevel.from_observations(k, values, n_ctx, n_values, terminal=term)
            for k, (n_ctx, term) in zip(keys, spec, strict=True)
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
        s0 = self.strata(sexes, ages)
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
        vstrata = self.strata(visit_sex, visit_age)
        vcls = None
        if self._uses_classes:
            vcls = self._sample_classes(vstrata, patient_offsets, nv, rng)
        lengths = self._tables["lengths"].sample(
            self._count_keys(vstrata, vcls), rng
        ).astype(np.int64)
        if "prevvisit" in used_features(self.context) and n_visits > n:
            cats, lengths = self._sample_by_visit_number(
                vstrata, lengths, patient_offsets, nv, rng, vcls
            )
        else:
            cats, lengths = self._sample_categories(vstrata, lengths, rng, None, vcls)
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

    def _sample_classes(
        self,
        vstrata: npt.NDArray[np.int32],
        patient_offsets: npt.NDArray[np.int64],
        nv: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> npt.NDArray[np.int32]:
        """Visit classes, in rounds by visit number (each given the previous visit's class)."""
        table = self._tables["classes"]
        n_visits = vstrata.size
        out = np.full(n_visits, self.n_classes, dtype=np.int32)
        visit_no = np.arange(n_visits) - np.repeat(patient_offsets[:-1], nv)
        for k in range(int(nv.max()) if nv.size else 0):
            idx = np.flatnonzero(visit_no == k)
            prev = out[idx - 1] if k else np.full(idx.size, self.n_classes, dtype=np.int32)
            out[idx] = table.sample(self._class_keys(vstrata[idx], prev), rng)
        return out

    def _sample_categories(
        self,
        vstrata: npt.NDArray[np.int32],
        lengths: npt.NDArray[np.int64],
        rng: np.random.Generator,
        prevvisit: npt.NDArray[np.int32] | None = None,
        classes: npt.NDArray[np.int32] | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Categories of all visits, stepping position by position over the visits that are
        still open (sorted longest first, so the open visits are always a prefix)."""
        table = self._tables["transitions"]
        n_visits = lengths.size
        max_len = int(lengths.max()) if n_visits else 0
        order = np.argsort(-lengths, kind="stable")
        len_sorted = lengths[order]
        s_sorted = vstrata[order]
        len_b = length_bucket(len_sorted)
        pv_sorted = None if prevvisit is None else prevvisit[order]
        cls_sorted = None if classes is None else classes[order]
        buf = np.full((n_visits, max(max_len, 1)), -1, dtype=np.int32)
        none = np.int32(self.n_categories)
        used = used_features(self.context)
        # open_at[i] = number of visits with length > i (a prefix of the sorted visits).
        open_at = n_visits - np.searchsorted(len_sorted[::-1], np.arange(max_len), side="right")
        for i in range(max_len):
            m = int(open_at[i])
            values: dict[str, npt.NDArray[Any]] = {"stratum": s_sorted[:m]}
            for name, j in (("prev1", i - 1), ("prev2", i - 2), ("first", 0 if i else -1)):
                if name in used or "p" + name in used:
                    if j < 0:
                        values[name] = np.full(m, none, dtype=np.int32)
                    else:
                        col = buf[:m, j]
                        values[name] = np.where(col < 0, none, col)
                    if "p" + name in used:
                        values["p" + name] = self._parent[values[name]]
            if "len" in used:
                values["len"] = len_b[:m]
            if "left" in used:
                values["left"] = length_bucket(len_sorted[:m] - i)
            if "prevvisit" in used:
                values["prevvisit"] = (
                    np.full(m, none, dtype=np.int32) if pv_sorted is None else pv_sorted[:m]
                )
            if cls_sorted is not None:
                values["cls"] = cls_sorted[:m]
            keys = self._lazy_keys(values, m)
            tok = table.sample(keys, rng)
            if i >= 1:
                tok = self._enforce_cap(buf[:m, :i], tok, keys, rng)
            buf[:m, i] = tok
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n_visits)
        rows = buf[inverse]
        mask = (np.arange(buf.shape[1]) < lengths[:, None]) & (rows >= 0)
        return rows[mask].astype(np.int32), mask.sum(axis=1).astype(np.int64)

    def _sample_by_visit_number(
        self,
        vstrata: npt.NDArray[np.int32],
        lengths: npt.NDArray[np.int64],
        patient_offsets: npt.NDArray[np.int64],
        nv: npt.NDArray[np.int64],
        rng: np.random.Generator,
        classes: npt.NDArray[np.int32] | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Visits in rounds by their number within the patient, so that each round sees the
        first category of the patient's previous visit."""
        n_visits = lengths.size
        visit_no = np.arange(n_visits) - np.repeat(patient_offsets[:-1], nv)
        none = np.int32(self.n_categories)
        first_cat = np.full(n_visits, none, dtype=np.int32)
        owner: list[npt.NDArray[np.int64]] = []
        drawn: list[npt.NDArray[np.int32]] = []
        out_len = np.zeros(n_visits, dtype=np.int64)
        for k in range(int(nv.max())):
            idx = np.flatnonzero(visit_no == k)
            pv = first_cat[idx - 1] if k else np.full(idx.size, none, dtype=np.int32)
            cats, got = self._sample_categories(
                vstrata[idx], lengths[idx], rng, pv, None if classes is None else classes[idx]
            )
            out_len[idx] = got
            offs = np.zeros(idx.size + 1, dtype=np.int64)
            np.cumsum(got, out=offs[1:])
            has = got > 0
            first_cat[idx[has]] = cats[offs[:-1][has]]
            owner.append(np.repeat(idx, got))
            drawn.append(cats)
        order = np.argsort(np.concatenate(owner), kind="stable")
        return np.concatenate(drawn)[order].astype(np.int32), out_len

    def _over_cap(self, earlier: npt.NDArray[np.int32], tok: npt.NDArray[np.int32]) -> Any:
        seen = (earlier == tok[:, None]).sum(axis=1)
        return seen >= self._cap[tok]

    def _enforce_cap(
        self,
        earlier: npt.NDArray[np.int32],
        tok: npt.NDArray[np.int32],
        keys: LazyKeys,
        rng: np.random.Generator,
    ) -> npt.NDArray[np.int32]:
        table = self._tables["transitions"]
        bad = np.flatnonzero(self._over_cap(earlier, tok))
        if bad.size == 0:
            return tok
        # rejection sampling with every round drawn at once (one walk of the chain): the
        # first candidate under the cap is a draw of the restricted distribution
        # (then 4 times as many for the few left, before the exact fallback)
        for rounds in (self.max_redraws, 4 * self.max_redraws):
            if rounds <= 0 or bad.size == 0:
                break
            rep = np.repeat(bad, rounds)
            cand = table.sample(keys.subset(rep), rng)
            ok = ~np.asarray(self._over_cap(earlier[rep], cand)).reshape(bad.size, rounds)
            cand = cand.reshape(bad.size, rounds)
            has = ok.any(axis=1)
            tok[bad[has]] = cand[has, ok[has].argmax(axis=1)]
            bad = bad[~has]
        # rare: the exact distributions restricted to the categories left, in chunks
        n_tok = table.n_tokens
        for lo in range(0, bad.size, _FALLBACK_CHUNK):
            rows = bad[lo : lo + _FALLBACK_CHUNK]
            k = rows.size
            key_rows = [
                np.asarray(keys.at(lv, rows), dtype=np.int64) for lv in range(keys.n_levels)
            ]
            p = table.prob(
                [np.repeat(kr, n_tok) for kr in key_rows], np.tile(np.arange(n_tok), k)
            ).reshape(k, n_tok)
            seen = earlier[rows]
            valid = seen >= 0
            owner = np.repeat(np.arange(k), valid.sum(axis=1))
            counts = np.bincount(
                owner * n_tok + seen[valid], minlength=k * n_tok
            ).reshape(k, n_tok)
            p[counts >= self._cap[None, :]] = 0.0
            cdf = np.cumsum(p, axis=1)
            total = cdf[:, -1]
            u = rng.random(k) * total
            pick = np.minimum((cdf <= u[:, None]).sum(axis=1), n_tok - 1)
            tok[rows] = np.where(total > 0, pick, -1)
        return tok

    # --- likelihood ---------------------------------------------------------------------
    def nll_parts(self, cohort: Cohort) -> dict[str, float]:
        """Negative log-likelihood (nats) of ``cohort`` by part, and the token counts."""
        hierarchy = self._require_fitted()
        if cohort.n_visits == 0:
            raise DataError("cohort: no visits to score")
        cats = self._canonical(cohort, self._category_tokens(cohort, hierarchy))
        vstrata = self._visit_strata(cohort)
        lengths = cohort.visit_lengths
        floor = EPS / hierarchy.n_categories
        if not self._uses_classes:
            keys = self._transition_observations(cohort, cats, vstrata)
            p_cat = self._tables["transitions"].prob(keys, cats)
            nll_cat = -np.log((1 - EPS) * p_cat + floor).sum()
            nll_len = self._count_nll("lengths", vstrata, lengths)
        else:
            # exact: the visit classes form a hidden Markov chain over a patient's visits
            visit = np.repeat(np.arange(cohort.n_visits), lengths)
            joint = np.empty((cohort.n_visits, self.n_classes))
            length_only = np.empty((cohort.n_visits, self.n_classes))
            for k in range(self.n_classes):
                cls = np.full(cohort.n_visits, k, dtype=np.int32)
                keys = self._transition_observations(cohort, cats, vstrata, cls)
                p_cat = self._tables["transitions"].prob(keys, cats)
                lp_cat = np.bincount(
                    visit, np.log((1 - EPS) * p_cat + floor), minlength=cohort.n_visits
                )
                length_only[:, k] = -self._count_nll_each("lengths", vstrata, lengths, cls)
                joint[:, k] = length_only[:, k] + lp_cat
            nll_joint = -self._forward(cohort, vstrata, joint)
            nll_len = -self._forward(cohort, vstrata, length_only)
            nll_cat = nll_joint - nll_len

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

    def _forward(
        self, cohort: Cohort, vstrata: npt.NDArray[np.int32], log_emit: npt.NDArray[np.float64]
    ) -> float:
        """Log-likelihood of all patients with the visit classes summed out (forward pass in
        rounds by visit number); ``log_emit[v, k]`` is the visit's log-likelihood given class k."""
        k_n = self.n_classes
        n_strata = 2 * self.n_bands
        s_all = np.repeat(np.arange(n_strata), (k_n + 1) * k_n)
        prev_all = np.tile(np.repeat(np.arange(k_n + 1), k_n), n_strata)
        cls_all = np.tile(np.arange(k_n), n_strata * (k_n + 1))
        p = self._tables["classes"].prob(self._class_keys(s_all, prev_all), cls_all)
        with np.errstate(divide="ignore"):
            log_t = np.log(p).reshape(n_strata, k_n + 1, k_n)
        nv = cohort.visits_per_patient
        visit_no = np.arange(cohort.n_visits) - np.repeat(cohort.patient_offsets[:-1], nv)
        alpha = np.empty_like(log_emit)
        for r in range(int(nv.max())):
            idx = np.flatnonzero(visit_no == r)
            if r == 0:
                alpha[idx] = log_t[vstrata[idx], k_n] + log_emit[idx]
            else:
                step = alpha[idx - 1][:, :, None] + log_t[vstrata[idx], :k_n]
                top = step.max(axis=1)
                top = np.where(np.isfinite(top), top, 0.0)
                with np.errstate(divide="ignore"):
                    alpha[idx] = top + np.log(np.exp(step - top[:, None, :]).sum(axis=1))
                alpha[idx] += log_emit[idx]
        last = cohort.patient_offsets[1:][nv > 0] - 1
        return float(_logsumexp_rows(alpha[last]).sum())

    def _count_nll(
        self, table_name: str, strata: npt.NDArray[np.int32], values: npt.NDArray[np.int64]
    ) -> float:
        return float(self._count_nll_each(table_name, strata, values).sum())

    def _count_nll_each(
        self,
        table_name: str,
        strata: npt.NDArray[np.int32],
        values: npt.NDArray[np.int64],
        classes: npt.NDArray[np.int32] | None = None,
    ) -> npt.NDArray[np.float64]:
        table = self._tables[table_name]
        inside = values < table.n_tokens
        p = np.zeros(values.size)
        p[inside] = table.prob(
            [k[inside] for k in self._count_keys(strata, classes)], values[inside]
        )
        floor = np.exp2(-(values.astype(np.float64) + 1.0))
        return -np.log((1 - EPS) * p + EPS * floor)

    def log_likelihood(self, cohort: Cohort) -> tuple[float, int]:
        """``(total NLL in nats, number of tokens)``; tokens are category tokens plus one end
        marker per visit (see the module docstring). Per-token NLL is their ratio."""
        parts = self.nll_parts(cohort)
        return parts["total"], int(parts["n_tokens"])

    # --- persistence --------------------------------------------------------------------
    def _derived_transition_levels(self) -> dict[int, int]:
        """Transition levels recomputed at load: level -> the stored level (the one with the
        fewest entries among those it is a projection of)."""
        table = self._tables["transitions"]
        sizes = {j: table.levels[j].tokens.size for j in range(len(table.levels))}
        return {
            i: min(sources, key=lambda j: (sizes[j], j))
            for i, sources in derivable_levels(self.context).items()
        }

    def _transition_key_maps(self, derived: dict[int, int]) -> dict[int, Any]:
        sizes = feature_sizes(self.n_categories, self.n_bands, self.n_classes, self.n_parents)
        parents = {f: self._parent for f in ("pprev1", "pprev2", "pfirst")}
        return {
            i: projection(self.context[j], self.context[i], sizes, parents)
            for i, j in derived.items()
        }

    def save(self, directory: Path | str) -> None:
        """Write ``model.safetensors`` and ``config.json`` to ``directory`` (format
        :data:`MARKOV_FORMAT`: integer arrays in their narrowest types, transition levels that
        are projections of a stored level left out and recomputed by :meth:`load`)."""
        hierarchy = self._require_fitted()
        arrays: dict[str, npt.NDArray[Any]] = {"gap_quantiles": self._gap_quantiles}
        arrays.update(pack_uint("category_rank", self._rank))
        derived = self._derived_transition_levels()
        tables: dict[str, Any] = {}
        for name, table in self._tables.items():
            skip = derived if name == "transitions" else None
            arrays.update(table.to_arrays(name, skip))
            tables[name] = table.to_config(skip)
        config = {
            "markov_format": MARKOV_FORMAT,
            "order": self.order,
            "context": [level_name(f) for f in self.context],
            "age_edges": list(self.age_edges),
            "token_order": self.token_order,
            "smoothing": self.smoothing,
            "batch_size": self.batch_size,
            "max_redraws": self.max_redraws,
            "tables": tables,
            "n_classes": self.n_classes,
            "class_iterations": self.class_iterations,
            "group_parents": self.group_parents,
            "class_assignment": self.class_assignment,
            "hierarchy": hierarchy.to_dict(),
            "training_summary": self.summary,
        }
        save_checkpoint(directory, self.name, config, arrays)

    @classmethod
    def load(cls, directory: Path | str) -> MarkovGenerator:
        """Read a model written by :meth:`save` (``ModelError`` when it cannot)."""
        ckpt = load_checkpoint(directory, kind=cls.name, required=("gap_quantiles",))
        cfg = ckpt.config
        version = cfg.get("markov_format", 1)
        if version != MARKOV_FORMAT:
            raise ModelError(
                f"{directory}: markov checkpoint format {version!r} is not supported by this "
                f"hiergen (it reads format {MARKOV_FORMAT}); retrain the model",
                hint="retrain the model with this hiergen version",
            )
        try:
            model = cls(
                order=int(cfg["order"]),
                context=list(cfg["context"]),
                age_edges=[float(e) for e in cfg["age_edges"]],
                token_order=str(cfg["token_order"]),
                n_classes=int(cfg["n_classes"]),
                class_iterations=int(cfg["class_iterations"]),
                group_parents=bool(cfg.get("group_parents", False)),
                class_assignment=str(cfg.get("class_assignment", "sample")),
                smoothing=float(cfg["smoothing"]),
                batch_size=int(cfg["batch_size"]),
                max_redraws=int(cfg["max_redraws"]),
            )
            hierarchy = Hierarchy.from_dict(cfg["hierarchy"])
            model._set_hierarchy(hierarchy)
            names = [*_TABLES, "classes"] if model._uses_classes else list(_TABLES)
            for name in names:
                key_maps = None
                if name == "transitions":
                    derived = {
                        i: int(meta["derived_from"])
                        for i, meta in enumerate(cfg["tables"][name]["levels"])
                        if "derived_from" in meta
                    }
                    if any(j >= len(model.context) for j in derived.values()):
                        raise ValueError("a transition level is derived from an unknown level")
                    key_maps = model._transition_key_maps(derived)
                model._tables[name] = BackoffTable.from_saved(
                    name, cfg["tables"][name], ckpt.arrays, key_maps
                )
            if model._tables["transitions"].n_tokens != hierarchy.n_categories:
                raise ValueError("transition table and hierarchy disagree on the categories")
            rank = unpack_uint("category_rank", ckpt.arrays).astype(np.int32)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelError(f"{directory}: inconsistent markov checkpoint ({exc})") from exc
        model._gap_quantiles = np.asarray(ckpt.arrays["gap_quantiles"], dtype=np.float64)
        shape = (2 * model.n_bands, hierarchy.n_categories)
        if rank.size != shape[0] * shape[1]:
            raise ModelError(f"{directory}: inconsistent markov checkpoint (category_rank shape)")
        model._rank = rank.reshape(shape)
        model._cap = np.diff(hierarchy.offsets).astype(np.int64)
        model.summary = dict(cfg.get("training_summary", {}))
        return model


def _logsumexp_rows(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    top = a.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


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
