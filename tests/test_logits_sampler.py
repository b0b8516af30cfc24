"""The compiled logits sampler (hiergen.sampling.sample_logits): exact distributions for
temperature, top-k and top-p, forbidden columns, counter-based determinism, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("hiergen._core", reason="the compiled extension is not built")
from hiergen.sampling import sample_logits  # noqa: E402


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x[np.isfinite(x)].max())
    e[~np.isfinite(x)] = 0.0
    return e / e.sum()


def _reference(x: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
               ) -> np.ndarray:
    """Sort-based reference distribution over the columns of one row."""
    order = np.lexsort((np.arange(x.size), -x))  # best first, ties by lower column
    p = _softmax(x / temperature)
    keep = np.zeros(x.size, dtype=bool)
    ranked = order[p[order] > 0]
    if 0 < top_k < ranked.size:
        ranked = ranked[:top_k]
    q = p[ranked] / p[ranked].sum()
    if top_p < 1.0:
        before = np.cumsum(q) - q
        ranked = ranked[before < top_p]
    keep[ranked] = True
    out = np.where(keep, p, 0.0)
    return out / out.sum()


def _frequencies(row: np.ndarray, n: int, seed: int = 0, **options: Any) -> np.ndarray:
    logits = np.repeat(row[None, :].astype(np.float32), n, axis=0)
    tokens = sample_logits(logits, seed=seed, step=0, **options)
    return np.bincount(tokens, minlength=row.size) / n


@pytest.mark.parametrize("options", [{}, {"temperature": 0.5}, {"temperature": 2.0},
                                     {"top_k": 5}, {"top_p": 0.8}, {"top_k": 8, "top_p": 0.6}])
def test_matches_reference_distribution(options: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    row = rng.normal(0.0, 1.5, 40).astype(np.float32)
    n = 200_000
    freq = _frequencies(row, n, **options)
    ref = _reference(row.astype(np.float64), **options)
    assert np.all(freq[ref == 0] == 0), "drew a column outside the allowed set"
    sd = np.sqrt(ref * (1 - ref) / n)
    assert np.all(np.abs(freq - ref) <= 5 * sd + 1e-12), (freq, ref)


def test_greedy_is_first_argmax_among_allowed() -> None:
    x = np.array([[1.0, 3.0, 3.0, 2.0], [1.0, 3.0, 3.0, 2.0]], dtype=np.float32)
    out = sample_logits(x, seed=0, step=0, temperature=0.0, floors=[0, 2], floor_start=0)
    assert out.tolist() == [1, 2]


def test_floors_and_forbidden_columns() -> None:
    x = np.zeros((4, 6), dtype=np.float32)
    x[1, 0] = -np.inf
    x[2, :] = -np.inf
    x[3, 1] = np.nan
    floors = np.array([4, 6, 0, 0])
    for seed in range(50):
        out = sample_logits(x, seed=seed, step=0, floors=floors, floor_start=2)
        assert out[0] in (0, 1, 4, 5)
        assert out[1] == 1  # columns 2..5 floored away, column 0 is -inf
        assert out[2] == -1  # nothing allowed
        assert out[3] != 1  # NaN never drawn


def test_draw_depends_only_on_seed_stream_and_step() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 50)).astype(np.float32)
    streams = np.arange(1000, 1300)
    a = sample_logits(x, seed=9, step=4, streams=streams, top_p=0.9, threads=1)
    perm = rng.permutation(300)
    b = sample_logits(x[perm], seed=9, step=4, streams=streams[perm], top_p=0.9, threads=2)
    assert np.array_equal(a[perm], b)
    half = sample_logits(x[:150], seed=9, step=4, streams=streams[:150], top_p=0.9)
    assert np.array_equal(a[:150], half)
    assert not np.array_equal(a, sample_logits(x, seed=9, step=5, streams=streams, top_p=0.9))
    assert not np.array_equal(a, sample_logits(x, seed=8, step=4, streams=streams, top_p=0.9))


def test_out_buffer_and_dtype_conversion() -> None:
    x = np.array([[0.0, 0.0, -np.inf]] * 8)  # float64, -inf column
    out = np.empty(8, dtype=np.int32)
    res = sample_logits(x, seed=1, step=0, out=out)
    assert res is out and set(out.tolist()) <= {0, 1}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_k": -1}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"floor_start": 9}, "floor_start"),
    ({"streams": [1, 2]}, "streams"),
    ({"floors": [1]}, "floors"),
    ({"step": -1}, "step"),
    ({"out": np.empty(2, dtype=np.int64)}, "out"),
])
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    x = np.zeros((3, 5), dtype=np.float32)
    options: dict[str, object] = {"seed": 0, "step": 0, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        sample_logits(x, **options)  # type: ignore[arg-type]


def test_bad_logits() -> None:
    with pytest.raises(ValueError, match="logits"):
        sample_logits(np.zeros(5, dtype=np.float32), seed=0, step=0)
    with pytest.raises(ValueError, match=r"\+inf"):
        sample_logits(np.array([[0.0, np.inf]], dtype=np.float32), seed=0, step=0)


@settings(max_examples=60, deadline=None)
@given(
    logits=st.lists(st.sampled_from([-np.inf, -3.0, -1.0, 0.0, 0.5, 2.0]), min_size=1,
                    max_size=40),
    top_k=st.integers(0, 6),
    top_p=st.sampled_from([0.3, 0.9, 1.0]),
    floor=st.integers(0, 45),
    seed=st.integers(0, 2**64 - 1),
)
def test_draws_stay_in_the_allowed_truncated_set(logits: list[float], top_k: int,
                                                 top_p: float, floor: int, seed: int) -> None:
    row = np.array(logits, dtype=np.float64)
    allowed = row.copy()
    start = min(2, row.size)
    allowed[start:min(max(floor, start), row.size)] = -np.inf
    x = np.repeat(row[None, :].astype(np.float32), 64, axis=0)
    out = sample_logits(x, seed=seed, step=3, floors=np.full(64, floor), floor_start=start,
                        top_k=top_k, top_p=top_p)
    if not np.isfinite(allowed).any():
        assert (out == -1).all()
        return
    ref = _reference(allowed, top_k=top_k, top_p=top_p)
    assert (ref[out] > 0).all()
