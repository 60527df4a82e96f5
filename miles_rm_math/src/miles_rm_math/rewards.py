"""The math rewards: which answer each one grades, and what score it gives.

- ``math``: the last ``\\boxed{}``/``\\fbox{}`` of the response; ``1`` / ``0`` (int).
- ``deepscaler``: the last box after the last ``</think>`` (else after the first ``###Response``;
  neither: no answer); ``1`` / ``0``.
- ``gemma_math``: the last box after the last ``<channel|>`` (else anywhere); ``1`` / ``0``.
- ``dapo``: the last ``Answer: ...`` line in the last 300 characters;
  ``{"score": 1.0 | -1.0, "acc": bool, "pred": str}`` (the spec's ``reward_key`` is ``"score"``).
- ``boxed_<type>``: the last box of the whole response; scored as ``<type>``.

``boxed_<type>`` follows Miles's ``boxed_`` step (replace the response by its last box) and then
grades that content with ``<type>``'s equivalence and score values. Miles then runs ``<type>``'s own
extraction again on the box content, which finds no box, ``Answer:`` line or ``</think>`` in it, so
a ``boxed_*`` sample of Miles scores as wrong unless its box holds another box; we do not repeat the
extraction. ``boxed_dapo`` therefore grades DAPO-style (±1) on a boxed answer, like DAPO's strict-box
mode.

Equivalence is math-verify's (:mod:`miles_rm_math.equivalence`), bounded by ``--math-verify-timeout``.
A check that times out or whose worker fails scores as a **wrong** answer (``0``; ``-1.0`` for
``dapo``, so an answer that hangs the checker can never earn more than a wrong one), is logged, and
is recorded on the sample: ``metadata["math_verify"] = "timeout" | "error"`` and
``metadata["math_verify_detail"]`` with the reason.

Labels: a string (a bare answer or a whole solution with a ``\\boxed{}``), a number, or a list of
acceptable answers. Miles's ``dapo`` requires an integer label (``str(int(float(gt)))``) and raises on
anything else; ours accepts any answer math-verify can parse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from miles_rm_math.answer_check import check_answer, reference_answers
from miles_rm_math.extraction import (
    DAPO_INVALID_ANSWER,
    dapo_answer_line,
    deepscaler_segment,
    gemma_segment,
    last_boxed_answer,
)
from miles_rm_math.normalization import normalize_answer
from miles_rm_math.options import verifier_options
from miles_rm_math.verifier_pool import Verdict, VerifierPool, get_pool

__all__ = ["MathRewardType", "MathGrade", "REWARD_TYPES", "grade_response", "score_sample", "reward_function"]

logger = logging.getLogger(__name__)

DAPO_REWARD_KEY = "score"


@dataclass(frozen=True)
class MathRewardType:
    """One registered reward name: how it finds the answer, and how it turns a grade into a reward."""

    name: str
    description: str
    find_answer: Callable[[str], str | None]
    output: Literal["binary", "dapo"]

    def score(self, grade: MathGrade) -> int | dict[str, Any]:
        if self.output == "dapo":
            return dapo_score(grade)
        return 1 if grade.correct else 0


@dataclass(frozen=True)
class MathGrade:
    """The graded answer of one response: the extracted answer (``None``: none found) and the verdict."""

    answer: str | None
    verdict: Verdict

    @property
    def correct(self) -> bool:
        return self.verdict.correct


def dapo_score(grade: MathGrade) -> dict[str, Any]:
    """DAPO's rule-based reward (Yu et al. 2025, arXiv:2503.14476, "Rule-based Reward Modeling"): +1 if
    the answer is equivalent to the label, else -1; ``acc`` and ``pred`` (the normalised answer, or
    ``"[INVALID]"`` when there is no ``Answer:`` line) as verl's ``math_dapo`` reports them."""
    return {
        "score": 1.0 if grade.correct else -1.0,
        "acc": grade.correct,
        "pred": normalize_answer(grade.answer) if grade.answer is not None else DAPO_INVALID_ANSWER,
    }


def _deepscaler_answer(response: str) -> str | None:
    segment = deepscaler_segment(response)
    return None if segment is None else last_boxed_answer(segment)


def _gemma_answer(response: str) -> str | None:
    return last_boxed_answer(gemma_segment(response))


_BASE_TYPES = (
    MathRewardType("math", "1 if the last \\boxed{} answer equals the label (math-verify), else 0",
                   last_boxed_answer, "binary"),
    MathRewardType("dapo", "DAPO: +1/-1 from the last 'Answer:' line (dict: score, acc, pred; --reward-key score)",
                   dapo_answer_line, "dapo"),
    MathRewardType("deepscaler", "DeepScaleR: 1 if the last \\boxed{} after </think> equals the label, else 0",
                   _deepscaler_answer, "binary"),
    MathRewardType("gemma_math", "Gemma-4: 1 if the last \\boxed{} after <channel|> equals the label, else 0",
                   _gemma_answer, "binary"),
)

#: Every reward name this package registers, ``boxed_<type>`` included.
REWARD_TYPES: dict[str, MathRewardType] = {
    **{t.name: t for t in _BASE_TYPES},
    **{
        f"boxed_{t.name}": MathRewardType(
            f"boxed_{t.name}", f"{t.name} scores on the content of the last \\boxed{{}} of the whole response",
            last_boxed_answer, t.output)
        for t in _BASE_TYPES
    },
}


def grade_response(reward_type: MathRewardType, response: str, label: Any, pool: VerifierPool) -> MathGrade:
    """Find the answer of ``response`` as ``reward_type`` does, and check it against ``label``."""
    answer = reward_type.find_answer(response or "")
    return MathGrade(answer, check_answer(reference_answers(label), answer, pool))


def score_sample(args: Any, sample: Any, reward_name: str) -> int | dict[str, Any]:
    """The reward of one sample (synchronous; safe in any thread). Records a timeout on the sample."""
    reward_type = REWARD_TYPES[reward_name]
    grade = grade_response(reward_type, sample.response, sample.label, get_pool(verifier_options(args)))
    if grade.verdict.failed:
        _record_failed_check(sample, reward_name, grade)
    return reward_type.score(grade)


def _record_failed_check(sample: Any, reward_name: str, grade: MathGrade) -> None:
    sample.metadata["math_verify"] = grade.verdict.status
    sample.metadata["math_verify_detail"] = grade.verdict.detail
    logger.warning("%s reward of sample %s: %s; scored as a wrong answer (answer %.80r, label %.80r)",
                   reward_name, getattr(sample, "index", None), grade.verdict.detail, grade.answer, sample.label)


def reward_function(reward_name: str) -> Callable[..., Any]:
    """``async def reward(args, sample, **kwargs)`` for ``reward_name``, as ``--rm-type`` calls it.

    The check runs in a thread (``asyncio.to_thread``) so the event loop of the rollout keeps
    generating while math-verify works.
    """
    if reward_name not in REWARD_TYPES:
        raise KeyError(f"unknown math reward {reward_name!r}; one of {sorted(REWARD_TYPES)}")

    async def reward(args: Any, sample: Any, **kwargs: Any) -> int | dict[str, Any]:
        import asyncio  # here, not at import: the plugin module stays cheap to import

        return await asyncio.to_thread(score_sample, args, sample, reward_name)

    reward.__name__ = reward.__qualname__ = f"{reward_name}_reward"
    reward.__doc__ = f"The ``{reward_name}`` reward: {REWARD_TYPES[reward_name].description}."
    return reward
