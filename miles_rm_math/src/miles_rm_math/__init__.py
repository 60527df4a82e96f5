"""miles-rm-math: rule-based math rewards for Miles, checked by math-verify in bounded worker processes.

Registers ``math``, ``dapo``, ``deepscaler``, ``gemma_math`` and ``boxed_<each>`` (select with
``--rm-type NAME``). Importing the package does not import sympy or math-verify.

Use outside a run::

    from miles_rm_math import REWARD_TYPES, VerifierOptions, get_pool, grade_response

    grade = grade_response(REWARD_TYPES["math"], "so \\\\boxed{\\\\frac12}", "0.5", get_pool(VerifierOptions()))
    grade.correct  # True
"""

from miles_rm_math.rewards import REWARD_TYPES, MathGrade, MathRewardType, grade_response, reward_function, score_sample
from miles_rm_math.verifier_pool import Verdict, VerifierOptions, VerifierPool, get_pool

__all__ = [
    "REWARD_TYPES",
    "MathGrade",
    "MathRewardType",
    "Verdict",
    "VerifierOptions",
    "VerifierPool",
    "get_pool",
    "grade_response",
    "reward_function",
    "score_sample",
]
