"""The ``default`` rollout function against a scripted router: filters, over-sampling, abort, partial
rollouts, failures, hooks, eval metrics and debug data."""

from __future__ import annotations

import asyncio

import pytest
from miles_core.data.jsonl_source import JsonlDataSource
from miles_core.rollout.debug_data import load_debug_rollout, save_debug_rollout
from miles_core.rollout.default_rollout import DefaultRollout
from miles_core.rollout.failures import RolloutFailedError
from miles_core.rollout.rollout_types import RolloutFnConstructorInput, RolloutFnEvalInput, RolloutFnTrainInput

from miles_core import DynamicFilterOutput, FilterSpec, RewardModelSpec, SampleStatus, hookimpl


class RolloutTestPlugin:
    """A reward, filters and lifecycle hooks that record what they saw."""

    def __init__(self):
        self.after_rewards: list[tuple[int, bool]] = []
        self.after_rollout: list[tuple[int, int]] = []

    @hookimpl
    def miles_reward_models(self):
        def odd_length(args, sample, **kwargs):
            return float(sample.response_length % 2)

        async def explode(args, sample, **kwargs):
            raise RuntimeError("judge is down")

        yield RewardModelSpec(name="odd_length", description="1 for an odd response length", fn=odd_length)
        yield RewardModelSpec(name="explode", description="always raises", fn=explode)

    @hookimpl
    def miles_filters(self):
        def even_groups(args, samples, **kwargs):
            keep = samples[0].group_index % 2 == 0
            return DynamicFilterOutput(keep=keep, reason=None if keep else "odd_group")

        def remove_first(args, data):
            for group in data:
                group[0].remove_sample = True

        yield FilterSpec(name="even_groups", description="keep every other group", fn=even_groups)
        yield FilterSpec(name="drop_all", description="drop everything", fn=lambda args, samples: False)
        yield FilterSpec(name="remove_first", description="remove each group's first sample", fn=remove_first,
                         stage="sample")

    @hookimpl
    def miles_after_rewards(self, args, samples, evaluation):
        self.after_rewards.append((samples[0].group_index, evaluation))

    @hookimpl
    def miles_after_rollout(self, args, rollout_id, samples):
        self.after_rollout.append((rollout_id, len(samples)))


@pytest.fixture
def plugin(register_plugin):
    recorder = RolloutTestPlugin()
    register_plugin(recorder, name="rollout_test_plugin")
    return recorder


@pytest.fixture
def setup(miles_args, write_jsonl, tiny_qwen3, router, miles_plugin_manager, plugin):
    """``setup(prompts=..., **flags) -> (rollout, data_source, args)``."""

    def build(prompts=None, **flags):
        prompts = prompts or [f"fast {i}" for i in range(12)]
        path = write_jsonl([{"prompt": p, "label": "1"} for p in prompts])
        host, port = router.url.removeprefix("http://").split(":")
        values = dict(prompt_data=path, hf_checkpoint=str(tiny_qwen3), n_samples_per_prompt=2, rollout_batch_size=2,
                      over_sampling_batch_size=2, global_batch_size=4, sglang_router_ip=host,
                      sglang_router_port=int(port), rm_type="odd_length", rollout_max_response_len=8,
                      rollout_http_retry_backoff=0.01, rollout_http_max_retries=0)
        values.update(flags)
        args = miles_args(**values)
        source = JsonlDataSource(args, plugin_manager=miles_plugin_manager)
        rollout = DefaultRollout(RolloutFnConstructorInput(args, source, miles_plugin_manager))
        return rollout, source, args

    return build


def _train(rollout, rollout_id=0):
    return asyncio.run(rollout(RolloutFnTrainInput(rollout_id=rollout_id, weight_version="0")))


def _accounted(metrics):
    """Every finished group is kept, buffered or dropped for a counted reason."""
    dropped = sum(v for k, v in metrics.items() if k.startswith(("rollout/dynamic_filter/drop_", "rollout/dropped_groups/")))
    return metrics["rollout/groups_kept"] + metrics["rollout/partial_rollout/groups_to_buffer"] + dropped


def test_groups_have_tokens_log_probs_rewards_and_statuses(setup, plugin):
    rollout, _, _ = setup()
    output = _train(rollout)
    assert len(output.samples) == 2 and all(len(g) == 2 for g in output.samples)
    for group in output.samples:
        assert len({s.group_index for s in group}) == 1
        for sample in group:
            sample.validate()
            assert sample.response_length > 0 and len(sample.rollout_log_probs) == sample.response_length
            assert sample.reward == float(sample.response_length % 2)
            assert sample.status in (SampleStatus.COMPLETED, SampleStatus.TRUNCATED)
    assert sorted(plugin.after_rewards) == [(0, False), (1, False)]
    assert plugin.after_rollout == [(0, 2)]
    metrics = output.metrics
    assert metrics["rollout/over_sampling/rounds"] == 1 and metrics["rollout/groups_kept"] == 2
    assert {"rollout/response_len/mean", "rollout/truncated_ratio", "rollout/raw_reward", "perf/rollout_time",
            "rollout/zero_std/all_zero_percentage"} <= set(metrics)
    assert _accounted(metrics) == metrics["rollout/over_sampling/groups_finished"]


def test_the_same_seed_gives_the_same_samples(setup):
    def tokens(**flags):
        rollout, _, _ = setup(**flags)
        return [[s.tokens for s in g] for g in _train(rollout).samples]

    assert tokens(rollout_seed=5) == tokens(rollout_seed=5)
    assert tokens(rollout_seed=5) != tokens(rollout_seed=6)


def test_over_sampling_refills_until_enough_groups_survive(setup):
    rollout, _, _ = setup(dynamic_sampling_filter="even_groups", rollout_batch_size=3, over_sampling_batch_size=4)
    output = _train(rollout)
    assert len(output.samples) == 3
    assert all(g[0].group_index % 2 == 0 for g in output.samples)
    assert [g[0].index for g in output.samples] == sorted(g[0].index for g in output.samples)
    metrics = output.metrics
    assert metrics["rollout/over_sampling/rounds"] >= 2
    assert metrics["rollout/dynamic_filter/drop_odd_group"] >= 2
    assert _accounted(metrics) == metrics["rollout/over_sampling/groups_finished"]


def test_the_round_bound_returns_what_there_is_with_a_warning(setup, caplog):
    rollout, _, _ = setup(dynamic_sampling_filter="drop_all", over_sampling_max_rounds=2)
    output = _train(rollout)
    assert output.samples == []
    assert output.metrics["rollout/over_sampling/rounds"] == 2
    assert output.metrics["rollout/dynamic_filter/drop_unspecified"] == 4
    assert "only 0 of 2 groups (--rollout-batch-size) survived after 2 over-sampling rounds" in caplog.text


def test_leftovers_are_aborted_and_resumed_with_partial_rollout(setup, router):
    rollout, source, _ = setup(prompts=["fast a", "fast b", "slow c", "slow d"], over_sampling_batch_size=4,
                               partial_rollout=True)
    router.hang_markers = ("slow",)
    first = _train(rollout, rollout_id=0)
    assert [g[0].prompt for g in first.samples] == ["fast a", "fast b"]
    assert router.aborts >= 1
    assert first.metrics["rollout/partial_rollout/groups_to_buffer"] == 2
    assert source.get_buffer_length() == 2
    buffered = source.buffer
    assert all(s.status == SampleStatus.ABORTED and s.response_length == 1 and s.metadata["start_rollout_id"] == 0
               for g in buffered for s in g)

    router.reset()  # the engine answers everything now
    rollout.args.over_sampling_batch_size = 2  # fetch exactly the two buffered groups
    second = _train(rollout, rollout_id=1)
    assert [g[0].prompt for g in second.samples] == ["slow c", "slow d"]
    for sample in (s for g in second.samples for s in g):
        assert sample.response_length > 1 and len(sample.weight_versions) == 2
        assert sample.metadata["start_rollout_id"] == 0
    resumed_request = router.requests[0]
    assert resumed_request["sampling_params"]["max_new_tokens"] == 7  # 8 minus the token generated before


def test_leftovers_are_dropped_and_counted_without_partial_rollout(setup, router):
    rollout, source, _ = setup(prompts=["fast a", "fast b", "slow c", "slow d"], over_sampling_batch_size=4)
    router.hang_markers = ("slow",)
    output = _train(rollout)
    assert len(output.samples) == 2
    assert output.metrics["rollout/dropped_groups/aborted"] == 2
    assert source.get_buffer_length() == 0


def test_failed_samples_drop_their_group_and_are_counted(setup, router):
    rollout, _, _ = setup()
    router.fail_statuses = [400]
    output = _train(rollout)
    assert len(output.samples) == 2
    assert output.metrics["rollout/failed/generate"] == 1
    assert output.metrics["rollout/dropped_groups/has_failed_sample"] == 1
    assert all(s.status != SampleStatus.FAILED for g in output.samples for s in g)


def test_a_rollout_where_every_sample_fails_stops_with_the_first_error(setup):
    rollout, _, _ = setup(rm_type="explode")
    with pytest.raises(RolloutFailedError, match=r"all (\d+) finished samples failed \(reward: \1\); first error: reward 'explode' raised RuntimeError: judge is down"):
        _train(rollout)


def test_the_sample_filter_marks_removed_samples(setup):
    rollout, _, _ = setup(rollout_sample_filter="remove_first")
    output = _train(rollout, rollout_id=3)
    assert [[s.remove_sample for s in g] for g in output.samples] == [[True, False], [True, False]]
    assert output.metrics["rollout/sample_filter/removed"] == 2


def test_a_saved_rollout_loads_back_equal(setup, tmp_path):
    rollout, _, _ = setup()
    output = _train(rollout, rollout_id=3)
    template = str(tmp_path / "debug" / "rollout_{rollout_id}.jsonl")
    save_debug_rollout(template, 3, output.samples)
    loaded = load_debug_rollout(template, 3)
    assert [[s.to_dict() for s in g] for g in loaded] == [[s.to_dict() for s in g] for g in output.samples]


def test_eval_reports_metrics_per_dataset(setup, write_jsonl, plugin):
    small = write_jsonl([{"prompt": "e1", "label": "1"}, {"prompt": "e2", "label": "1"}], name="small.jsonl")
    other = write_jsonl([{"prompt": "o1", "label": "1"}], name="other.jsonl")
    rollout, _, _ = setup(eval_prompt_data=["small", small, "other", other], n_samples_per_eval_prompt=4,
                          eval_max_response_len=2)
    output = asyncio.run(rollout(RolloutFnEvalInput(rollout_id=0)))
    assert set(output.data) == {"small", "other"}
    assert len(output.data["small"]["rewards"]) == 8 and len(output.data["other"]["samples"]) == 4
    for name, entry in output.data.items():
        rewards = [s.reward for s in entry["samples"]]
        assert entry["rewards"] == rewards
        assert output.metrics[f"eval/{name}"] == pytest.approx(sum(rewards) / len(rewards))
        assert output.metrics[f"eval/{name}-truncated_ratio"] == pytest.approx(
            sum(s.status == SampleStatus.TRUNCATED for s in entry["samples"]) / len(rewards))
        assert all(s.response_length <= 2 for s in entry["samples"])  # --eval-max-response-len
        assert {f"eval/{name}-pass@1", f"eval/{name}-pass@2", f"eval/{name}-pass@4"} <= set(output.metrics)
    assert all(evaluation for _, evaluation in plugin.after_rewards)
