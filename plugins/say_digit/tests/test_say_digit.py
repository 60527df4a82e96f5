import argparse
import asyncio
import json

import pytest

from miles_core import Sample
from miles_say_digit.plugin import say_digit_reward
from miles_say_digit.task import make_prompts, score, write_dataset


@pytest.mark.parametrize(
    ("response", "length", "expected"),
    [("7777", 4, 1.0), ("77", 4, 0.5), ("7177", 4, 0.8), ("abcd", 4, 0.0), ("1111", 4, 0.2), ("", 4, 0.0),
     ("77777777", 4, 1.0), ("7a", None, 0.5)],
)
def test_score(response, length, expected):
    assert score(response, "7", length) == pytest.approx(expected)


def test_score_rejects_bad_label():
    with pytest.raises(ValueError, match="one digit"):
        score("7", "12")


def test_reward_uses_max_response_len():
    args = argparse.Namespace(rollout_max_response_len=4)
    sample = Sample(response="33", label="3")
    assert asyncio.run(say_digit_reward(args, sample)) == 0.5


def test_dataset_is_seeded(tmp_path):
    path = write_dataset(tmp_path / "d.jsonl", count=20, seed=3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == make_prompts(20, seed=3)
    assert all(row["prompt"] == f"Say {row['label']}:" for row in rows)


def test_registered_through_entry_point():
    from miles_core.plugins.manager import build_plugin_manager

    pm = build_plugin_manager()
    assert pm.provenance("reward_models", "say_digit").distribution == "miles-example-say-digit"
