"""Eval: the evaluation datasets, their cadence, and sampling overrides (unset ones inherit the rollout's)."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import fraction, non_negative_float, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Eval")
    group.add_argument("--eval-prompt-data", nargs="+", default=None, metavar="NAME_OR_PATH",
                       help="One or more 'NAME PATH' pairs, e.g. 'aime /data/aime.jsonl gsm8k /data/gsm8k.jsonl'.")
    group.add_argument("--eval-interval", type=positive_int, default=None, metavar="N",
                       help="Rollouts between eval runs (needs --eval-prompt-data).")
    group.add_argument("--n-samples-per-eval-prompt", type=positive_int, default=1, metavar="N",
                       help="Responses per eval prompt.")
    group.add_argument("--eval-max-response-len", type=positive_int, default=None, metavar="TOKENS",
                       help="Max eval response length. Inherits --rollout-max-response-len if unset.")
    group.add_argument("--eval-temperature", type=non_negative_float, default=None,
                       help="Eval temperature. Inherits --rollout-temperature if unset.")
    group.add_argument("--eval-top-p", type=fraction, default=None,
                       help="Eval top-p. Inherits --rollout-top-p if unset.")
    group.add_argument("--eval-top-k", type=int, default=None, help="Eval top-k. Inherits --rollout-top-k if unset.")
    group.add_argument("--skip-eval-before-train", action="store_true",
                       help="Do not evaluate the initial model before the first rollout.")
    group.add_argument("--eval-function-path", default=None, metavar="PKG.MOD:CLASS",
                       help="Miles escape hatch: the rollout function used for eval. Unset: the training one.")
