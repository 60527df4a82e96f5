"""The task itself: prompts, labels and the score of a response.

The task is chosen so that a *randomly initialised* model visibly learns it with RL in minutes on a
laptop CPU: the reward is dense (every character of the response counts) and has two steps, so the
curve shows both stages — first "answer with digits" (partial credit), then "answer with *the* digit
of the prompt", which needs the policy to read its prompt.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

RIGHT_DIGIT = 1.0
OTHER_DIGIT = 0.2


def score(response: str, digit: str, length: int | None = None) -> float:
    """Mean per-character credit over ``length`` characters (default: the response's length).

    With ``length`` set to the maximum response length, stopping early earns nothing for the missing
    characters, so the best answer is ``length`` copies of the digit.
    """
    if len(digit) != 1 or not digit.isdigit():
        raise ValueError(f"the label must be one digit, got {digit!r}")
    denominator = length or len(response)
    if denominator <= 0:
        return 0.0
    credit = sum(RIGHT_DIGIT if ch == digit else OTHER_DIGIT if ch.isdigit() else 0.0 for ch in response[:denominator])
    return credit / denominator


def make_prompts(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        digit = str(rng.randint(0, 9))
        rows.append({"prompt": f"Say {digit}:", "label": digit})
    return rows


def write_dataset(path: str | Path, count: int = 1000, seed: int = 0) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in make_prompts(count, seed):
            handle.write(json.dumps(row) + "\n")
    return out
