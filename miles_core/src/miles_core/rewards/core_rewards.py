"""Built-in rewards of miles-core: ``remote_rm``, ``random``, ``deterministic_random``, ``f1``, ``gpqa``.

Math rewards (``math``, ``dapo``, ``deepscaler``) come from the ``miles-rm-math`` distribution. Every
registered name also works as ``boxed_<name>`` (grade only the last ``\\boxed{}`` of the response).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import RewardModelSpec
from miles_core.rewards.f1 import f1_reward
from miles_core.rewards.gpqa import gpqa_reward
from miles_core.rewards.random_rewards import deterministic_random_reward, random_reward
from miles_core.rewards.remote import remote_rm


@hookimpl
def miles_reward_models() -> Iterable[RewardModelSpec]:
    yield RewardModelSpec(name="remote_rm", description="POST prompt/response/label to --rm-url; the JSON answer is the reward",
                          fn=remote_rm)
    yield RewardModelSpec(name="random", description="0 or 1 at random (plumbing tests)", fn=random_reward)
    yield RewardModelSpec(name="deterministic_random", description="0 or 1 from a hash of tokens and response",
                          fn=deterministic_random_reward)
    yield RewardModelSpec(name="f1", description="SQuAD token F1 between the response and the label", fn=f1_reward)
    yield RewardModelSpec(name="gpqa", description="1.0 when the response picks the correct multiple-choice letter",
                          fn=gpqa_reward)


@hookimpl
def miles_add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("core_rewards")
    group.add_argument("--rm-timeout", type=float, default=60.0,
                       help="Seconds to wait for one answer of the --rm-url reward service.")
    group.add_argument("--rm-max-retries", type=int, default=3,
                       help="Retries of a --rm-url request after a transport error, timeout, HTTP 429 or 5xx.")
    group.add_argument("--rm-retry-backoff", type=float, default=0.5,
                       help="First wait in seconds between --rm-url retries; doubles each retry (at most 30 s).")
