"""The core reward functions on hand-made cases: f1, gpqa, the random ones, boxed extraction."""

from __future__ import annotations

import pytest
from miles_core.rewards.boxed import last_boxed_content
from miles_core.rewards.f1 import f1_reward, f1_score, normalize_answer
from miles_core.rewards.gpqa import correct_letter, extract_choice_letter, gpqa_reward
from miles_core.rewards.random_rewards import deterministic_random_reward, random_reward

from miles_core import Sample


def test_normalize_answer_follows_squad():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("An apple, a day.") == "apple day"


def test_f1_hand_computed():
    # prediction tokens {eiffel, tower, paris}, truth {eiffel, tower}: P = 2/3, R = 1, F1 = 0.8
    assert f1_score("The Eiffel Tower, Paris", "Eiffel Tower") == pytest.approx(0.8)
    assert f1_score("Eiffel Tower", "the eiffel tower.") == 1.0
    assert f1_score("London", "Paris") == 0.0
    assert f1_score("yes", "no") == 0.0
    assert f1_score("no", "no") == 1.0
    assert f1_score("yes it is", "yes") == 0.0  # yes/no answers must match exactly


def test_f1_reward_takes_the_best_of_several_labels():
    sample = Sample(response="blue whale", label=["whale", "blue whale"])
    assert f1_reward(None, sample) == 1.0
    assert f1_reward(None, Sample(response="blue", label="blue whale")) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="needs a label"):
        f1_reward(None, Sample(response="x"))


@pytest.mark.parametrize("response, expected", [
    ("Let me think... The answer is B.", "B"),
    ("answer: (C)", "C"),
    ("I believe D is the correct one", "D"),
    ("After all that, the final answer is **A**", "A"),
    ("Options A and B are wrong, so C", "C"),
    ("no letter here", None),
])
def test_gpqa_extracts_the_committed_letter(response, expected):
    assert extract_choice_letter(response, tuple("ABCD")) == expected


def test_gpqa_correct_letter_sources():
    valid = tuple("ABCD")
    assert correct_letter("x", {"correct_letter": "c"}, valid) == "C"
    assert correct_letter("b", {}, valid) == "B"
    assert correct_letter(3, {}, valid) == "D"
    assert correct_letter("Paris", {"choices": ["Rome", " paris.", "Oslo"]}, tuple("ABC")) == "B"
    with pytest.raises(ValueError, match="cannot tell the correct option"):
        correct_letter("Berlin", {"choices": ["Rome", "Paris"]}, tuple("AB"))


def test_gpqa_reward():
    meta = {"choices": ["4", "5", "6"]}
    assert gpqa_reward(None, Sample(response="<think>maybe A</think>The answer is B", label=1, metadata=meta)) == 1.0
    assert gpqa_reward(None, Sample(response="<think>B</think>The answer is A", label=1, metadata=meta)) == 0.0
    # no letter at all: the correct choice's text in the response still counts
    assert gpqa_reward(None, Sample(response="it must be 5", label="5", metadata=meta)) == 1.0
    # a letter outside the valid range (only 3 choices) is ignored
    assert gpqa_reward(None, Sample(response="The answer is D", label="A", metadata=meta)) == 0.0
    assert gpqa_reward(None, Sample(response="I pick E", label="E", metadata={"valid_letters": ["D", "E"]})) == 1.0


def test_random_rewards():
    sample = Sample(tokens=[1, 2, 3], response="abc")
    assert {random_reward(None, sample) for _ in range(50)} == {0, 1}
    values = {deterministic_random_reward(None, Sample(tokens=[1, 2, 3], response="abc")) for _ in range(5)}
    assert len(values) == 1 and values <= {0, 1}
    spread = {deterministic_random_reward(None, Sample(tokens=[i], response="x")) for i in range(20)}
    assert spread == {0, 1}


def test_last_boxed_content():
    assert last_boxed_content(r"first \boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed_content(r"\fbox{7}") == "7"
    assert last_boxed_content(r"so \boxed 42$ done") == "42"
    assert last_boxed_content(r"\boxed{unclosed") is None
    assert last_boxed_content("nothing") is None
