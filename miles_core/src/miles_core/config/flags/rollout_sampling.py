"""Rollout: sampling. The sampling parameters sent with every generate request of a training rollout."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import fraction, non_negative_float, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Rollout: sampling")
    group.add_argument("--rollout-max-response-len", type=positive_int, default=None, metavar="TOKENS",
                       help="Max tokens per response (max_new_tokens). Unset: up to the context length.")
    group.add_argument("--rollout-temperature", type=non_negative_float, default=1.0, help="Sampling temperature.")
    group.add_argument("--rollout-top-p", type=fraction, default=1.0, help="Top-p truncation, in (0, 1].")
    group.add_argument("--rollout-top-k", type=int, default=-1, help="Top-k truncation (-1 disables).")
    group.add_argument("--rollout-stop", nargs="+", default=None, metavar="TEXT", help="Stop strings.")
    group.add_argument("--rollout-stop-token-ids", nargs="+", type=int, default=None, metavar="ID",
                       help="Stop token ids. Unset: the model's end-of-sequence tokens; set it when generations "
                            "do not stop.")
    group.add_argument("--rollout-skip-special-tokens", action="store_true",
                       help="Drop special tokens from the decoded response text.")
