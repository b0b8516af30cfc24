"""Per-shard random streams derived with :class:`numpy.random.SeedSequence`.

Shard ``i`` of a job with seed ``S`` always uses ``SeedSequence(S, spawn_key=(i,))`` (the
``i``-th child of ``SeedSequence(S).spawn``), so its patients do not depend on how many
workers run the job or in which order shards finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_MASK63 = (1 << 63) - 1


def check_seed(seed: int, *, argument: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{argument}: expected a non-negative integer, got {seed!r}")
    return int(seed)


def shard_sequence(seed: int, shard: int) -> np.random.SeedSequence:
    """The seed sequence of shard ``shard`` of a job seeded with ``seed``."""
    return np.random.SeedSequence(check_seed(seed), spawn_key=(int(shard),))


@dataclass(frozen=True)
class ShardSeeds:
    """The three independent streams of one shard."""

    demographics: np.random.SeedSequence
    stage1: int
    stage2: int

    @classmethod
    def of(cls, seed: int, shard: int) -> ShardSeeds:
        demo, s1, s2 = shard_sequence(seed, shard).spawn(3)
        return cls(
            demographics=demo,
            stage1=int(s1.generate_state(1, np.uint64)[0]) & _MASK63,
            stage2=int(s2.generate_state(1, np.uint64)[0]) & _MASK63,
        )

    def describe(self, seed: int, shard: int) -> dict[str, Any]:
        """JSON record of the shard's seeds for the manifest."""
        return {"entropy": int(seed), "spawn_key": [int(shard)], "stage1": self.stage1,
                "stage2": self.stage2}
