"""Reward and filters: how responses are scored, and which groups and samples are kept for training."""

from __future__ import annotations

import argparse

MILES_REWARDS = "math, dapo, deepscaler, f1, gpqa, ifbench, remote_rm, random (and boxed_* variants)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Reward and filters")
    group.add_argument("--rm-type", default=None, metavar="NAME",
                       help=f"Reward-model plugin. Miles's built-ins: {MILES_REWARDS}; 'miles plugins' lists what is "
                            "installed (math, dapo, deepscaler come with miles-rm-math). Unset: each sample's "
                            "metadata['rm_type'], or --custom-rm-path.")
    group.add_argument("--rm-url", default=None, metavar="URL", help="Endpoint of --rm-type remote_rm.")
    group.add_argument("--group-rm", action="store_true",
                       help="Score a whole group in one call (batched reward models).")
    group.add_argument("--custom-rm-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: async rm(args, sample) -> float | dict (a list with --group-rm).")
    group.add_argument("--reward-key", default=None, metavar="KEY",
                       help="Key of the scalar reward when the reward model returns a dict.")
    group.add_argument("--eval-reward-key", default=None, metavar="KEY",
                       help="--reward-key for eval. Unset: --reward-key.")
    group.add_argument("--dynamic-sampling-filter", default=None, metavar="NAME",
                       help="Filter plugin applied to each completed group (DAPO dynamic sampling, e.g. nonzero_std "
                            "from miles-filters-dapo).")
    group.add_argument("--dynamic-sampling-filter-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: group filter fn(args, samples) -> DynamicFilterOutput | bool.")
    group.add_argument("--buffer-filter", default="pop_first", metavar="NAME",
                       help="Filter plugin that picks groups from the data-source buffer.")
    group.add_argument("--buffer-filter-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: buffer dequeue filter fn(args, rollout_id, buffer, num_samples).")
    group.add_argument("--rollout-sample-filter", default=None, metavar="NAME",
                       help="Filter plugin that marks single samples as removed once per rollout batch.")
    group.add_argument("--rollout-sample-filter-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: per-sample filter fn(args, groups) setting sample.remove_sample.")
