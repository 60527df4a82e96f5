"""Built-in RL algorithms (``--advantage-estimator NAME``), their own flags and their checks.

An ordinary plugin, registered through the ``miles`` entry point ``loss_estimators``. It imports no
torch: each spec's ``compute_advantages`` is a small wrapper that imports the math in
``miles_core.training.advantages`` on first call, so ``miles --help`` and ``miles plugins`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterable

from miles_core.plugins.hookspecs import hookimpl
from miles_core.plugins.types import LossEstimatorSpec

__all__ = ["miles_loss_estimators", "miles_add_arguments", "miles_validate_args", "REINFORCE_PLUS_PLUS_NAMES"]

#: Estimators whose token-level advantages are not centred, so Miles requires ``--normalize-advantages``.
REINFORCE_PLUS_PLUS_NAMES = ("reinforce_plus_plus", "reinforce_plus_plus_baseline")


def _lazy(function_name: str) -> Callable[[argparse.Namespace, dict], None]:
    """``compute_advantages`` that imports ``advantages.<function_name>`` (and torch) when first called."""

    def compute_advantages(args: argparse.Namespace, batch: dict) -> None:
        module = importlib.import_module("miles_core.training.advantages")
        getattr(module, function_name)(args, batch)

    compute_advantages.__name__ = compute_advantages.__qualname__ = function_name
    compute_advantages.__doc__ = f"Calls miles_core.training.advantages.{function_name}(args, batch)."
    return compute_advantages


@hookimpl
def miles_loss_estimators() -> Iterable[LossEstimatorSpec]:
    yield LossEstimatorSpec(
        name="grpo", description="GRPO: group-normalised reward (mean, std) as every token's advantage",
        compute_advantages=_lazy("grpo"), reward_normalization="group_mean_std",
    )
    yield LossEstimatorSpec(
        name="gspo", description="GSPO: GRPO advantages with a sequence-level importance ratio",
        compute_advantages=_lazy("gspo"), reward_normalization="group_mean_std", sequence_level_ratio=True,
    )
    yield LossEstimatorSpec(
        name="ppo", description="PPO with a critic: GAE over trained tokens (--gamma, --lambd)",
        compute_advantages=_lazy("ppo"), reward_normalization="none", needs_critic=True,
    )
    yield LossEstimatorSpec(
        name="reinforce_plus_plus",
        description="REINFORCE++: discounted returns of the terminal reward minus per-token KL, whitened",
        compute_advantages=_lazy("reinforce_plus_plus"), reward_normalization="none",
    )
    yield LossEstimatorSpec(
        name="reinforce_plus_plus_baseline",
        description="REINFORCE++ with the group-mean reward as baseline, whitened",
        compute_advantages=_lazy("reinforce_plus_plus_baseline"), reward_normalization="group_mean",
    )
    yield LossEstimatorSpec(
        name="on_policy_distillation",
        description="On-policy distillation: GRPO reward minus --opd-kl-coef x (student - teacher) log-probs",
        compute_advantages=_lazy("on_policy_distillation"), reward_normalization="group_mean_std",
        needs_teacher=True,
    )


@hookimpl
def miles_add_arguments(parser: argparse.ArgumentParser) -> None:
    # Every other loss flag is a core flag (miles_core/config/flags/algorithm.py); this one only
    # parameterises the dr_grpo reducer shipped here.
    if "--dr-grpo-divisor" in getattr(parser, "_option_string_actions", {}):
        return
    group = parser.add_argument_group("loss_estimators", "Options of the built-in loss estimators (miles-core)")
    group.add_argument("--dr-grpo-divisor", type=float, default=None, metavar="C",
                       help="Constant divisor of the pg loss with --custom-pg-loss-reducer-function-path "
                            "miles_core.training.reducers:dr_grpo (default: --rollout-max-response-len).")


@hookimpl
def miles_validate_args(args: argparse.Namespace) -> None:
    """Checks that depend on the estimator and the reducers shipped here; the generic loss-flag checks
    (clip ranges, TIS, KL coefficients, loss type, critic and teacher needs) live in ``miles_core.config``."""
    estimator = getattr(args, "advantage_estimator", None)
    kl_coef = getattr(args, "kl_coef", 0.0) or 0.0
    if estimator in REINFORCE_PLUS_PLUS_NAMES and not getattr(args, "normalize_advantages", False):
        raise ValueError(
            f"--advantage-estimator {estimator} needs --normalize-advantages: its advantages are not centred "
            "per token, and Miles whitens them over the batch. Add --normalize-advantages."
        )
    if estimator in ("grpo", "gspo", "on_policy_distillation") and kl_coef != 0:
        from miles_core.config.notices import warn

        warn(f"--kl-coef {kl_coef} is ignored by --advantage-estimator {estimator} (as in Miles); use --use-kl-loss "
             "--kl-loss-coef to regularise towards the reference model")
    if getattr(args, "entropy_coef", 0.0) and getattr(args, "loss_type", "policy_loss") != "policy_loss":
        raise ValueError(f"--entropy-coef applies to --loss-type policy_loss only, not {args.loss_type}")
    reducer_path = getattr(args, "custom_pg_loss_reducer_function_path", None) or ""
    if reducer_path.replace(":", ".").endswith("miles_core.training.reducers.dr_grpo") and not (
        getattr(args, "dr_grpo_divisor", None) or getattr(args, "rollout_max_response_len", None)
    ):
        raise ValueError("the dr_grpo reducer divides by a constant: set --dr-grpo-divisor or --rollout-max-response-len")
