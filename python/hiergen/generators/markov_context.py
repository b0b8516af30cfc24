"""Context features of the ``markov`` generator's transition table and their back-off chain.

Each back-off level of ``P(category | context)`` is named by the features its context holds,
joined by dots (``"stratum.first.prev1"``); the context key is the mixed-radix number of the
feature values. Features, per category token:

* ``stratum`` - sex x age band of the visit; ``sex`` - the patient's sex;
* ``prev1``, ``prev2`` - the previous and second previous category of the visit;
* ``first`` - the visit's first category (its principal diagnosis in most data sets);
* ``pprev1``, ``pprev2``, ``pfirst`` - the *parent* of ``prev1`` / ``prev2`` / ``first``:
  with a hierarchy where frequent codes are categories of their own (``250.00`` beside
  ``250``), the category they were split off, so that a level can pool the split tokens of
  one ICD-9-CM category (the parent of an ordinary category is itself);
* ``len`` - the visit's number of category tokens, bucketed (:data:`LENGTH_EDGES`);
* ``left`` - tokens left in the visit including this one, bucketed the same way;
* ``prevvisit`` - the first category of the patient's previous visit;
* ``cls`` - the visit's latent class (:mod:`hiergen.generators.markov_classes`).

Categories use ``n_categories`` for "none" (no previous token, first token of a visit, first
visit of a patient). A level is *terminal* when it holds no sequence feature (``stratum``,
``sex`` or the empty context): back-off stops there wherever the context was observed, so the
categories drawn for a patient are always ones seen in training for the patient's stratum
(or, for a stratum unseen in training, sex). Levels that pool strata (``sex.prev1``) are
allowed, but a category they put forward in a stratum that never had it is what made the
first model give newborn codes to adults; the defaults keep every level within the stratum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

#: Lower edges of the length buckets (``len`` and ``left`` features).
LENGTH_EDGES: Final = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 21, 31)
N_LENGTH_BUCKETS: Final = len(LENGTH_EDGES) + 1  # bucket 0: length 0 (never a token context)

CATEGORY_FEATURES: Final = (
    "prev1", "prev2", "first", "prevvisit", "pprev1", "pprev2", "pfirst"
)
SEQUENCE_FEATURES: Final = (*CATEGORY_FEATURES, "len", "left", "cls")
FEATURES: Final = ("stratum", "sex", *SEQUENCE_FEATURES)

#: The default chain (chosen on the NHDS 2010 protocol; see the module docstring of markov).
DEFAULT_CONTEXT: Final = (
    "stratum.cls.first.prev1",
    "stratum.cls.len.prev1",
    "stratum.cls.prev1",
    "stratum.len.prev1",
    "stratum.prev1",
    "stratum.cls",
    "stratum",
)
#: The chain of ``order=1``.
ORDER1_CONTEXT: Final = ("stratum.prev1", "stratum")
#: Fallbacks appended to every chain, for strata unseen in training.
FALLBACK_LEVELS: Final = ("sex", "")


def length_bucket(lengths: npt.ArrayLike) -> I64:
    """Bucket of each length (0 for 0, then one bucket per :data:`LENGTH_EDGES` edge)."""
    arr = np.asarray(lengths, dtype=np.int64)
    return np.searchsorted(np.asarray(LENGTH_EDGES), arr, side="right").astype(np.int64)


def parse_context(spec: str | Sequence[str] | None) -> tuple[tuple[str, ...], ...]:
    """The levels of a chain: a comma-separated string or a sequence of dotted names.

    The fallbacks ``sex`` and the empty context are appended when missing. Unknown or
    repeated features raise ``ValueError`` naming them.
    """
    if spec is None:
        names: list[str] = list(DEFAULT_CONTEXT)
    elif isinstance(spec, str):
        names = [s.strip() for s in spec.split(",")]
    else:
        names = [str(s).strip() for s in spec]
    levels: list[tuple[str, ...]] = []
    for name in names:
        feats = tuple(f for f in name.split(".") if f)
        unknown = [f for f in feats if f not in FEATURES]
        if unknown:
            raise ValueError(
                f"context: unknown feature {unknown[0]!r} in level {name!r}; known: "
                f"{', '.join(FEATURES)}"
            )
        if len(set(feats)) != len(feats):
            raise ValueError(f"context: level {name!r} repeats a feature")
        if feats in levels:
            raise ValueError(f"context: level {name!r} appears twice")
        levels.append(feats)
    for fb in FALLBACK_LEVELS:
        feats = tuple(f for f in fb.split(".") if f)
        if feats not in levels:
            levels.append(feats)
    return tuple(levels)


def level_name(features: Sequence[str]) -> str:
    return ".".join(features)


def is_terminal(features: Sequence[str]) -> bool:
    """A level without sequence features ends the back-off where its context was seen."""
    return not any(f in SEQUENCE_FEATURES for f in features)


def feature_sizes(
    n_categories: int, n_bands: int, n_classes: int = 1, n_parents: int | None = None
) -> dict[str, int]:
    """Number of values of every feature (``n_parents``: parent categories, default
    ``n_categories``; category features have one more value, "none")."""
    b = n_categories + 1
    pb = (n_categories if n_parents is None else n_parents) + 1
    return {
        "cls": max(1, n_classes),
        "stratum": 2 * n_bands, "sex": 2, "prev1": b, "prev2": b, "first": b, "prevvisit": b,
        "pprev1": pb, "pfirst": pb, "pprev2": pb,
        "len": N_LENGTH_BUCKETS, "left": N_LENGTH_BUCKETS,
    }


def n_contexts(
    features: Sequence[str],
    n_categories: int,
    n_bands: int,
    n_classes: int = 1,
    n_parents: int | None = None,
) -> int:
    sizes = feature_sizes(n_categories, n_bands, n_classes, n_parents)
    out = 1
    for f in features:
        out *= sizes[f]
    return out


def context_keys(
    levels: Sequence[Sequence[str]],
    values: Mapping[str, npt.NDArray[Any]],
    n_categories: int,
    n_bands: int,
    n_classes: int = 1,
    n_parents: int | None = None,
) -> list[I64]:
    """Mixed-radix context key of every element at every level. ``values`` holds the per-token
    arrays of the features the levels use (``sex`` is derived from ``stratum``, numbered
    ``sex * n_bands + band``)."""
    sizes = feature_sizes(n_categories, n_bands, n_classes, n_parents)
    cache: dict[str, I64] = {}

    def get(f: str) -> I64:
        if f not in cache:
            if f == "sex":
                cache[f] = np.asarray(values["stratum"], dtype=np.int64) // n_bands
            else:
                cache[f] = np.asarray(values[f], dtype=np.int64)
        return cache[f]

    n = int(np.shape(values["stratum"])[0])
    keys = []
    for feats in levels:
        key = np.zeros(n, dtype=np.int64)
        for f in feats:
            key = key * np.int64(sizes[f]) + get(f)
        keys.append(key)
    return keys


def used_features(levels: Sequence[Sequence[str]]) -> set[str]:
    return {f for feats in levels for f in feats}


#: Features that are a function of another one: the parent of a category feature. A level
#: holding ``pprev1`` can be recomputed from one holding ``prev1`` (given the parent map).
DERIVED_FEATURES: Final = {"pprev1": "prev1", "pprev2": "prev2", "pfirst": "first"}


def _covers(source: Sequence[str], target: Sequence[str]) -> bool:
    """Whether every feature of ``target`` is in ``source`` or a function of one there."""
    return all(f in source or DERIVED_FEATURES.get(f, "") in source for f in target)


def projection(
    source: Sequence[str],
    target: Sequence[str],
    sizes: Mapping[str, int],
    value_maps: Mapping[str, npt.NDArray[np.int64]] | None = None,
) -> Callable[[I64], I64]:
    """The map from context keys of level ``source`` to those of level ``target``, whose
    features must be in ``source`` or (:data:`DERIVED_FEATURES`) functions of features there,
    given by ``value_maps`` (``ValueError`` otherwise): decode the mixed-radix key into feature
    values, encode the ones ``target`` keeps."""
    maps = value_maps or {}
    for f in target:
        if f in source:
            continue
        if DERIVED_FEATURES.get(f, "") in source and f in maps:
            continue
        raise ValueError(
            f"context: level {level_name(target)!r} is not a projection of "
            f"{level_name(source)!r} (feature {f!r})"
        )

    def project(keys: I64) -> I64:
        rest = np.asarray(keys, dtype=np.int64)
        values: dict[str, I64] = {}
        for f in reversed(source):
            values[f] = rest % np.int64(sizes[f])
            rest = rest // np.int64(sizes[f])
        out = np.zeros(rest.shape, dtype=np.int64)
        for f in target:
            v = values[f] if f in source else maps[f][values[DERIVED_FEATURES[f]]]
            out = out * np.int64(sizes[f]) + v
        return out

    return project


def derivable_levels(levels: Sequence[Sequence[str]]) -> dict[int, list[int]]:
    """For every level whose features are covered by another level's (a strict subset, or
    functions of them: :data:`DERIVED_FEATURES`), the levels it can be recomputed from (those
    covered by no other level): only the others need to be stored."""
    sets = [set(f) for f in levels]

    def covers(j: int, i: int) -> bool:
        return sets[j] != sets[i] and _covers(levels[j], levels[i])

    n = len(levels)
    maximal = [j for j in range(n) if not any(covers(k, j) for k in range(n))]
    out: dict[int, list[int]] = {}
    for i in range(n):
        if i not in maximal:
            out[i] = [j for j in maximal if covers(j, i)]
    return out


__all__ = [
    "DEFAULT_CONTEXT",
    "DERIVED_FEATURES",
    "FEATURES",
    "LENGTH_EDGES",
    "context_keys",
    "derivable_levels",
    "feature_sizes",
    "is_terminal",
    "length_bucket",
    "level_name",
    "n_contexts",
    "parse_context",
    "projection",
    "used_features",
]
