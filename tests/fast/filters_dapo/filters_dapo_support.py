"""Helpers of the miles-filters-dapo tests (a module name of its own: every test folder shares sys.path)."""

from __future__ import annotations

import argparse

from miles_core import Sample, SampleStatus


def make_group(rewards, *, lengths=None, statuses=None) -> list[Sample]:
    """One group of samples with the given rewards (and response lengths / statuses)."""
    lengths = lengths or [10] * len(rewards)
    statuses = statuses or [SampleStatus.COMPLETED] * len(rewards)
    return [Sample(index=i, group_index=0, response="r", response_length=n, reward=r, status=s)
            for i, (r, n, s) in enumerate(zip(rewards, lengths, statuses, strict=True))]


def namespace(**values) -> argparse.Namespace:
    defaults = dict(reward_key=None, eval_reward_key=None, rm_type=None, rollout_max_response_len=None,
                    eval_max_response_len=None, overlong_buffer_len=None, overlong_penalty_factor=None,
                    overlong_penalty_in_eval=False, dynamic_sampling_filter=None, n_samples_per_prompt=4)
    defaults.update(values)
    return argparse.Namespace(**defaults)
