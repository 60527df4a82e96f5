"""RL algorithm: the estimator, KL, clipping, importance sampling, critic and distillation settings."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_float, non_negative_int

MILES_ESTIMATORS = "grpo, gspo, ppo, reinforce_plus_plus, reinforce_plus_plus_baseline, on_policy_distillation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("RL algorithm")
    group.add_argument("--advantage-estimator", default="grpo", metavar="NAME",
                       help=f"Loss-estimator plugin (the RL algorithm). Miles's: {MILES_ESTIMATORS}; "
                            "plugins may add more ('miles plugins').")
    group.add_argument("--loss-type", choices=("policy_loss", "sft_loss", "custom_loss"), default="policy_loss",
                       help="policy_loss (RL), sft_loss (−log-likelihood of the responses), or custom_loss "
                            "(--custom-loss-function-path).")
    group.add_argument("--use-kl-loss", action="store_true", help="Compute the KL to the reference model in the loss.")
    group.add_argument("--kl-loss-coef", type=non_negative_float, default=0.0,
                       help="Weight of the KL term in the loss (0 with --use-kl-loss: monitor only).")
    group.add_argument("--kl-loss-type", choices=("k1", "k2", "k3", "low_var_kl"), default="k1",
                       help="KL estimator of the loss-level KL.")
    group.add_argument("--use-unbiased-kl", action="store_true",
                       help="Weight the KL estimate by the importance ratio to the old policy (DeepSeek-V3.2).")
    group.add_argument("--kl-coef", type=non_negative_float, default=0.0,
                       help="Reward-level KL penalty (reinforce_plus_plus, ppo); ignored by grpo/gspo. "
                            "Cannot be combined with a non-zero --kl-loss-coef.")
    group.add_argument("--entropy-coef", type=non_negative_float, default=0.0, help="Entropy bonus weight.")
    group.add_argument("--eps-clip", type=non_negative_float, default=0.2, help="PPO/GRPO low clip of the ratio.")
    group.add_argument("--eps-clip-high", type=non_negative_float, default=None,
                       help="Asymmetric high clip (DAPO clip-higher). Unset: equal to --eps-clip.")
    group.add_argument("--eps-clip-c", type=float, default=None,
                       help="Dual-clip constant c > 1 for negative advantages. Unset: no dual clip.")
    group.add_argument("--gamma", type=non_negative_float, default=1.0, help="Discount (ppo, reinforce_plus_plus).")
    group.add_argument("--lambd", type=non_negative_float, default=1.0, help="GAE lambda (ppo).")
    group.add_argument("--normalize-advantages", action="store_true",
                       help="Whiten advantages over the data-parallel group (required by reinforce_plus_plus*).")
    group.add_argument("--disable-rewards-normalization", action="store_true",
                       help="Do not subtract the group mean from rewards (grpo, gspo, reinforce_plus_plus_baseline).")
    group.add_argument("--disable-grpo-std-normalization", action="store_true",
                       help="Do not divide by the group std (Dr. GRPO); implied when --n-samples-per-prompt is 1.")
    group.add_argument("--disable-compute-advantages-and-returns", action="store_true",
                       help="Skip advantage computation (sft_loss or a custom loss that does not need it).")
    group.add_argument("--use-tis", action="store_true",
                       help="Truncated importance sampling: weight the loss by trainer/rollout probability ratios "
                            "(not with --use-rollout-logprobs).")
    group.add_argument("--tis-clip", type=non_negative_float, default=2.0, help="Upper clamp of the TIS weight.")
    group.add_argument("--tis-clip-low", type=non_negative_float, default=0.0, help="Lower clamp of the TIS weight.")
    group.add_argument("--custom-tis-function-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: replace the TIS weighting (e.g. icepop).")
    group.add_argument("--get-mismatch-metrics", action="store_true",
                       help="Log train/rollout mismatch metrics without --use-tis.")
    group.add_argument("--use-rollout-logprobs", action="store_true",
                       help="Use the engines' log-probs as the old policy instead of recomputing them.")
    group.add_argument("--use-opsm", action="store_true",
                       help="Off-policy sequence masking: drop negative-advantage sequences that drifted too far.")
    group.add_argument("--opsm-delta", type=non_negative_float, default=1e-4,
                       help="Sequence-KL threshold of --use-opsm.")
    group.add_argument("--use-routing-replay", action="store_true",
                       help="Replay MoE routing of the forward pass in the backward pass.")
    group.add_argument("--use-rollout-routing-replay", action="store_true",
                       help="R3: capture the engine's expert routing and replay it during training.")
    group.add_argument("--calculate-per-token-loss", action="store_true",
                       help="Average the loss over tokens instead of per sample then over samples.")
    group.add_argument("--no-check-for-nan-in-loss-and-grad", dest="check_for_nan_in_loss_and_grad",
                       action="store_false", help="Skip the NaN/Inf guard on loss and gradients (debug only).")
    group.add_argument("--true-on-policy-mode", action="store_true",
                       help="Strict on-policy: deterministic inference on the engines, samples of an older policy "
                            "are rejected.")
    group.add_argument("--log-probs-chunk-size", type=int, default=-1,
                       help="Compute log-probs over the vocabulary in chunks of this many tokens (-1: one pass).")
    group.add_argument("--custom-loss-function-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: loss(args, batch, logits, sum_of_sample_mean) for "
                            "--loss-type custom_loss.")
    group.add_argument("--custom-pg-loss-reducer-function-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: a factory of the pg-loss reduction (e.g. Dr. GRPO's constant divisor).")
    group.add_argument("--custom-reward-post-process-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: f(args, samples) -> (raw_rewards, rewards); replaces group "
                            "reward normalisation.")
    # PPO critic
    group.add_argument("--critic-load", default=None, metavar="PATH", help="Critic checkpoint (ppo). Unset: --load.")
    group.add_argument("--critic-save", default=None, metavar="PATH",
                       help="Critic save directory (ppo). Unset: --save + '_critic'.")
    group.add_argument("--critic-lr", type=non_negative_float, default=None, help="Critic learning rate. Unset: --lr.")
    group.add_argument("--critic-lr-warmup-iters", type=non_negative_int, default=None, metavar="N",
                       help="Critic warm-up steps. Unset: --lr-warmup-iters.")
    group.add_argument("--num-critic-only-steps", type=non_negative_int, default=0, metavar="N",
                       help="Rollouts that train only the critic before the actor starts (ppo).")
    group.add_argument("--value-clip", type=non_negative_float, default=0.2, help="Clip of the value update (ppo).")
    # On-policy distillation
    group.add_argument("--opd-kl-coef", type=non_negative_float, default=1.0,
                       help="Weight of the teacher KL in the advantage (on_policy_distillation).")
    group.add_argument("--opd-teacher-url", default=None, metavar="URL",
                       help="SGLang-compatible server of the teacher that scores responses (on_policy_distillation).")
