"""Stubs for hiergen._core, the compiled Stage-2 sampler (kept true by tests/test_core_stubs.py)."""

from typing import Literal

import numpy as np
import numpy.typing as npt

class CategoryIndex:
    """Immutable category -> code index with one Vose alias table per (stratum, category)."""

    def __init__(
        self,
        offsets: npt.ArrayLike,
        weights: npt.ArrayLike,
        *,
        zero_weight: Literal["error", "uniform"] = "error",
    ) -> None: ...
    @property
    def n_categories(self) -> int: ...
    @property
    def n_codes(self) -> int: ...
    @property
    def n_strata(self) -> int: ...
    @property
    def zero_weight(self) -> Literal["error", "uniform"]: ...
    @property
    def offsets(self) -> npt.NDArray[np.int64]: ...
    @property
    def weights(self) -> npt.NDArray[np.float64]: ...
    def with_weights(self, weights: npt.ArrayLike) -> CategoryIndex: ...
    def sample(
        self,
        categories: npt.ArrayLike,
        strata: npt.ArrayLike | int | None = None,
        *,
        seed: int,
        out: npt.NDArray[np.int32] | None = None,
        threads: int | None = None,
    ) -> npt.NDArray[np.int32]: ...
    def sample_visits(
        self,
        categories: npt.ArrayLike,
        visit_offsets: npt.ArrayLike,
        strata: npt.ArrayLike | int | None = None,
        *,
        seed: int,
        out: npt.NDArray[np.int32] | None = None,
        threads: int | None = None,
        exhausted: Literal["repeat", "error"] = "repeat",
    ) -> npt.NDArray[np.int32]: ...

class ContextIndex:
    """Context-aware Stage-2 sampler: a CategoryIndex plus (category, context code) tables."""

    def __init__(
        self,
        index: CategoryIndex,
        category: npt.ArrayLike,
        context: npt.ArrayLike,
        score: npt.ArrayLike,
        weights: npt.ArrayLike,
        rank: npt.ArrayLike,
    ) -> None: ...
    @property
    def n_tables(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def index(self) -> CategoryIndex: ...
    @property
    def n_categories(self) -> int: ...
    @property
    def n_codes(self) -> int: ...
    @property
    def n_strata(self) -> int: ...
    def sample_visits(
        self,
        categories: npt.ArrayLike,
        visit_offsets: npt.ArrayLike,
        strata: npt.ArrayLike | int | None = None,
        *,
        seed: int,
        out: npt.NDArray[np.int32] | None = None,
        threads: int | None = None,
        exhausted: Literal["repeat", "error"] = "repeat",
        context: bool = True,
    ) -> npt.NDArray[np.int32]: ...

def simd(enabled: bool | None = None) -> bool: ...
def _bench_rng(
    out: npt.NDArray[np.uint32],
    seed: int,
    kind: Literal["counter", "splitmix", "xoshiro"] = "counter",
    threads: int | None = None,
) -> None: ...

def sample_logits(
    logits: npt.ArrayLike,
    *,
    seed: int,
    step: int,
    streams: npt.ArrayLike | None = None,
    floors: npt.ArrayLike | None = None,
    floor_start: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    out: npt.NDArray[np.int32] | None = None,
    threads: int | None = None,
) -> npt.NDArray[np.int32]: ...
