"""The entry point of miles-plugin-template: every hook implementation Miles calls, nothing heavy imported.

``pyproject.toml`` declares it::

    [project.entry-points.miles]
    template = "miles_plugin_template.plugin"

so ``miles plugins`` lists the plugin as ``template``, ``-p no:template`` blocks it, and
``--rm-type keyword_match`` / ``--dynamic-sampling-filter truncation_limit`` select what it provides.
"""

from __future__ import annotations

from miles_core import FilterSpec, RewardModelSpec, hookimpl
from miles_plugin_template.keyword_reward import MODES, keyword_match_reward
from miles_plugin_template.truncation_filter import truncation_limit


@hookimpl
def miles_reward_models():
    yield RewardModelSpec(
        name="keyword_match",
        description="Fraction of the label's keywords (or re: patterns) found in the response",
        fn=keyword_match_reward,
    )


@hookimpl
def miles_filters():
    yield FilterSpec(
        name="truncation_limit",
        description="Drop groups where more than --max-truncated-fraction of responses were truncated",
        fn=truncation_limit,
        stage="dynamic_sampling",
    )


@hookimpl
def miles_add_arguments(parser):
    group = parser.add_argument_group("miles-plugin-template", "keyword_match reward and truncation_limit filter")
    group.add_argument("--keyword-match-mode", choices=MODES, default="fraction",
                       help="keyword_match reward: fraction of keywords found, 1 if all, or 1 if any (default: fraction).")
    group.add_argument("--keyword-match-case-sensitive", action="store_true",
                       help="keyword_match reward: match case exactly (default: ignore case).")
    group.add_argument("--max-truncated-fraction", type=float, default=0.5,
                       help="truncation_limit filter: keep a group while at most this fraction is truncated (default: 0.5).")


@hookimpl
def miles_validate_args(args):
    fraction = getattr(args, "max_truncated_fraction", 0.5)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"--max-truncated-fraction must be between 0 and 1, got {fraction}")
