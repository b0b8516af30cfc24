"""Context features of the ``markov`` generator's transition table and their back-off chain.

Each back-off level of ``P(category | context)`` is named by the features its context holds,
joined by dots (``"stratum.first.prev1"``); the context key is the mixed-radix number of the
feature values. Features, per category token:

* ``stratum`` - sex x age band of the visit; ``sex`` - the patient's sex;
* ``prev1``, ``prev2`` - the previous and second previous category of the visit;
* ``first`` - the visit's first category (its principal diagnosis in most data sets);
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

CATEGORY_FEATURES: Final = ("prev1", "prev2", "first", "prevvisit")
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


def feature_sizes(n_categories: int, n_bands: int, n_classes: int = 1) -> dict[str, int]:
    b = n_categories + 1
    return {
        "cls": max(1, n_classes),
        "stratum": 2 * n_bands, "sex": 2, "prev1": b, "prev2": b, "first": b, "prevvisit": b,
        "len": N_LENGTH_BUCKETS, "left": N_LENGTH_BUCKETS,
    }


def n_contexts(
    features: Sequence[str], n_categories: int, n_bands: int, n_classes: int = 1
) -> int:
    sizes = feature_sizes(n_categories, n_bands, n_classes)
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
) -> list[I64]:
    """Mixed-radix context key of every element at every level. ``values`` holds the per-token
    arrays of the features the levels use (``sex`` is derived from ``stratum``, numbered
    ``sex * n_bands + band``)."""
    sizes = feature_sizes(n_categories, n_bands, n_classes)
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


def projection(
    source: Sequence[str], target: Sequence[str], sizes: Mapping[str, int]
) -> Callable[[I64], I64]:
    """The map from context keys of level ``source`` to those of level ``target``, whose
    features must be a subset of ``source``'s (``ValueError`` otherwise): decode the
    mixed-radix key into feature values, encode the ones ``target`` keeps."""
    missing = [f for f in target if f not in source]
    if missing:
        raise ValueError(
            f"context: level {level_name(target)!r} is not a projection of "
            f"{level_name(source)!r} (feature {missing[0]!r})"
        )

    def project(keys: I64) -> I64:
        rest = np.asarray(keys, dtype=np.int64)
        values: dict[str, I64] = {}
        for f in reversed(source):
            values[f] = rest % np.int64(sizes[f])
            rest = rest // np.int64(sizes[f])
        out = np.zeros(rest.shape, dtype=np.int64)
        for f in target:
            out = out * np.int64(sizes[f]) + values[f]
        return out

    return project


def derivable_levels(levels: Sequence[Sequence[str]]) -> dict[int, list[int]]:
    """For every level whose features are a strict subset of another level's, the levels it
    can be recomputed from (those whose features are maximal in the chain): only the others
    need to be stored."""
    sets = [set(f) for f in levels]
    maximal = [j for j, s in enumerate(sets) if not any(s < t for t in sets)]
    out: dict[int, list[int]] = {}
    for i, s in enumerate(sets):
        if i not in maximal:
            out[i] = [j for j in maximal if s < sets[j]]
    return out


__all__ = [
    "DEFAULT_CONTEXT",
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
