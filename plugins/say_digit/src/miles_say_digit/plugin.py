"""Registers the ``say_digit`` reward and the ``miles say-digit-data`` command.

This module is the entry point (``[project.entry-points.miles] say_digit = "miles_say_digit.plugin"``):
everything Miles needs from this package is declared here, with nothing heavy imported.
"""

from __future__ import annotations

from miles_core import RewardModelSpec, hookimpl
from miles_say_digit.task import score, write_dataset


async def say_digit_reward(args, sample, **kwargs) -> float:
    """``--rm-type say_digit``: credit per character of the response, over ``--rollout-max-response-len``."""
    return score(sample.response, str(sample.label), getattr(args, "rollout_max_response_len", None))


@hookimpl
def miles_reward_models():
    yield RewardModelSpec(
        name="say_digit",
        description="Demo task: 1 per character equal to the prompt's digit, 0.2 per other digit",
        fn=say_digit_reward,
    )


@hookimpl
def miles_register_commands(subparsers):
    command = subparsers.add_parser("say-digit-data", help="Write the 'Say 7:' task dataset as JSONL")
    command.add_argument("--out", required=True, help="output .jsonl path")
    command.add_argument("--count", type=int, default=1000, help="number of prompts")
    command.add_argument("--seed", type=int, default=0)

    def run(args):
        path = write_dataset(args.out, args.count, args.seed)
        print(f"wrote {args.count} prompts to {path}")
        return 0

    command.set_defaults(func=run)
