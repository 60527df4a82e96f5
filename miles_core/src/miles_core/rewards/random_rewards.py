"""``random`` and ``deterministic_random``: rewards that ignore correctness, for plumbing tests and baselines.

``deterministic_random`` hashes the tokens and the response (SHA-256, first byte, parity), so the same
sample always gets the same 0/1 reward, across processes and runs (Miles's definition).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

__all__ = ["random_reward", "deterministic_random_reward"]


def random_reward(args: Any, sample: Any, **kwargs: Any) -> int:
    return random.randint(0, 1)


def deterministic_random_reward(args: Any, sample: Any, **kwargs: Any) -> int:
    digest = hashlib.sha256((str(sample.tokens) + sample.response).encode("utf-8")).digest()
    return digest[0] % 2
