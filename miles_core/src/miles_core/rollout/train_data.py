"""Rollout groups → the training batch (Miles's ``convert_samples_to_train_data``).

1. Groups are flattened in order; the batch is trimmed to a multiple of ``--global-batch-size``
   (the dropped tail is logged with its counts).
2. Rewards: ``--custom-reward-post-process-path`` ``f(args, samples) -> (raw_rewards, rewards)``
   replaces normalisation; otherwise each sample's reward (a dict resolved with ``--reward-key``) is
   normalised per prompt group by ``estimator.reward_normalization`` through
   ``miles_core.training.advantages.normalize_group_rewards``, the one implementation.
   ``--disable-rewards-normalization`` turns it off; ``--disable-grpo-std-normalization`` (Dr. GRPO) and
   groups of one sample skip the division by the std. ``raw_reward`` is the unshaped reward
   (``metadata["raw_reward"]`` when a shaping hook kept it).
3. A sample with ``remove_sample`` keeps its place (its reward still counts in its group's
   normalisation) but its loss mask is all zeros.
"""

from __future__ import annotations

import logging
from typing import Any

from miles_core.data.sample import Sample, SampleStatus, flatten_groups
from miles_core.plugins.path_flags import load_path_flag
from miles_core.rewards.value import raw_reward_value, reward_value

__all__ = ["samples_to_train_data", "train_data_or_skip", "flatten_groups", "trim_to_global_batch"]

logger = logging.getLogger(__name__)


def trim_to_global_batch(args: Any, samples: list[Sample]) -> list[Sample]:
    """The longest prefix whose length is a multiple of ``--global-batch-size``."""
    global_batch_size = int(args.global_batch_size)
    keep = len(samples) - len(samples) % global_batch_size
    if keep == 0:
        raise ValueError(
            f"the rollout returned {len(samples)} samples, fewer than one --global-batch-size ({global_batch_size}); "
            "nothing can be trained. Filters dropped too much: raise --over-sampling-max-rounds or "
            "--over-sampling-batch-size, or relax the dynamic-sampling filter."
        )
    if keep < len(samples):
        logger.warning("trimming the rollout from %d to %d samples (a multiple of --global-batch-size %d); "
                       "%d samples are not trained on", len(samples), keep, global_batch_size, len(samples) - keep)
    return samples[:keep]


def _normalize(args: Any, samples: list[Sample], raw_rewards: list[float], estimator: Any) -> list[float]:
    mode = getattr(estimator, "reward_normalization", "none") or "none"
    if getattr(args, "disable_rewards_normalization", False):
        mode = "none"
    if mode == "none":
        return list(raw_rewards)
    from miles_core.training.advantages import normalize_group_rewards

    std_normalization = not getattr(args, "disable_grpo_std_normalization", False) and int(args.n_samples_per_prompt) > 1
    group_indices = [s.group_index if s.group_index is not None else i // int(args.n_samples_per_prompt)
                     for i, s in enumerate(samples)]
    return list(normalize_group_rewards(raw_rewards, group_indices, mode, std_normalization=std_normalization))


def samples_to_train_data(args: Any, samples: list[list[Sample]] | list[Sample], estimator: Any) -> dict[str, list]:
    """The training batch: per-sample lists (see ``docs/internal-contracts.md``, "Training batch")."""
    flat = trim_to_global_batch(args, flatten_groups(samples))
    for sample in flat:
        sample.validate()

    post_process = load_path_flag(args, "custom_reward_post_process_path")
    if post_process is not None:
        raw_rewards, rewards = post_process(args, flat)
        if len(raw_rewards) != len(flat) or len(rewards) != len(flat):
            raise ValueError(f"--custom-reward-post-process-path must return two lists of {len(flat)} rewards, "
                             f"got {len(raw_rewards)} and {len(rewards)}")
        raw_rewards, rewards = [float(r) for r in raw_rewards], [float(r) for r in rewards]
    else:
        rewards = _normalize(args, flat, [reward_value(args, s) for s in flat], estimator)
        raw_rewards = [raw_reward_value(args, s) for s in flat]

    loss_masks = []
    for sample in flat:
        mask = [1] * sample.response_length if sample.loss_mask is None else [int(m) for m in sample.loss_mask]
        loss_masks.append([0] * len(mask) if sample.remove_sample else mask)

    batch: dict[str, list] = {
        "tokens": [list(s.tokens) for s in flat],
        "response_lengths": [s.response_length for s in flat],
        "loss_masks": loss_masks,
        "rewards": rewards,
        "raw_reward": raw_rewards,
        "truncated": [1 if s.status == SampleStatus.TRUNCATED else 0 for s in flat],
        "sample_indices": [s.index for s in flat],
    }
    with_log_probs = [s.rollout_log_probs is not None for s in flat]
    if all(with_log_probs):
        batch["rollout_log_probs"] = [list(s.rollout_log_probs) for s in flat]
    elif any(with_log_probs):
        missing = [s.index for s, has in zip(flat, with_log_probs, strict=True) if not has][:5]
        raise ValueError(f"some samples have rollout log-probs and some do not (e.g. sample indices {missing}); "
                         "a generate function must fill rollout_log_probs for every sample")
    with_teacher = [s.teacher_log_probs is not None for s in flat]
    if all(with_teacher):
        batch["teacher_log_probs"] = [list(s.teacher_log_probs) for s in flat]
    elif any(with_teacher):
        missing = [s.index for s, has in zip(flat, with_teacher, strict=True) if not has][:5]
        raise ValueError(f"some samples have teacher log-probs and some do not (e.g. sample indices {missing})")
    return batch


def train_data_or_skip(args: Any, samples: list[Sample], estimator: Any, rollout_id: int) -> dict[str, list] | None:
    """The training batch, or ``None`` when fewer samples than one ``--global-batch-size`` survived.

    Late in training a dynamic-sampling filter can drop nearly every group (they all score the same);
    one thin rollout must not end the run, so the loop skips that rollout's optimizer step, counts it
    (``rollout/skipped_train_step``) and this warning says what to tune.
    """
    if len(samples) >= int(args.global_batch_size):
        return samples_to_train_data(args, samples, estimator)
    logger.warning(
        "rollout %d: %d samples survived the filters, fewer than one --global-batch-size (%d); no optimizer step "
        "this rollout (raise --over-sampling-max-rounds or --over-sampling-batch-size, or relax the "
        "dynamic-sampling filter)", rollout_id, len(samples), int(args.global_batch_size))
    return None
