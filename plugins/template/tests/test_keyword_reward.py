"""The keyword_match reward, as plain functions: modes, regular expressions, case, bad labels."""

import argparse
import asyncio

import pytest
from miles_plugin_template.keyword_reward import keyword_match_reward, keyword_match_score

from miles_core import Sample

LABEL = ["Paris", "re:<answer>.*</answer>", "France"]


@pytest.mark.parametrize(("response", "mode", "expected"), [
    ("<answer>Paris</answer> is in France", "fraction", 1.0),
    ("<answer>Paris</answer>", "fraction", 2 / 3),
    ("paris", "fraction", 1 / 3),
    ("nothing here", "fraction", 0.0),
    ("<answer>Paris</answer>", "all", 0.0),
    ("<answer>Paris</answer> france", "all", 1.0),
    ("france", "any", 1.0),
    ("nothing here", "any", 0.0),
])
def test_modes(response, mode, expected):
    assert keyword_match_score(response, LABEL, mode=mode) == pytest.approx(expected)


def test_case_sensitivity_and_single_string_label():
    assert keyword_match_score("PARIS", "paris") == 1.0
    assert keyword_match_score("PARIS", "paris", case_sensitive=True) == 0.0
    assert keyword_match_score("a.b", "a.b") == 1.0 and keyword_match_score("axb", "a.b") == 0.0  # literal, not regex
    assert keyword_match_score("axb", "re:a.b") == 1.0


@pytest.mark.parametrize(("label", "message"), [
    (None, "keyword_match needs the label to be a string or a list of strings, got None"),
    ([1, 2], "keyword_match needs the label to be a string or a list of strings, got [1, 2]"),
    (["", " "], "keyword_match needs at least one non-empty keyword in the label"),
    ("re:(", "keyword_match: bad regular expression 're:(' in the label: missing ), unterminated subpattern at position 0"),
])
def test_bad_labels_say_what_is_wrong(label, message):
    with pytest.raises(ValueError) as error:
        keyword_match_score("x", label)
    assert str(error.value) == message


def test_unknown_mode():
    with pytest.raises(ValueError, match=r"^--keyword-match-mode must be one of fraction, all, any, got 'most'$"):
        keyword_match_score("x", "x", mode="most")


def test_reward_reads_the_plugin_flags():
    sample = Sample(response="<answer>Paris</answer>", label=LABEL)
    assert asyncio.run(keyword_match_reward(argparse.Namespace(), sample)) == pytest.approx(2 / 3)
    args = argparse.Namespace(keyword_match_mode="all", keyword_match_case_sensitive=True)
    assert asyncio.run(keyword_match_reward(args, sample)) == 0.0
