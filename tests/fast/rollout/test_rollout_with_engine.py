"""The rollout side end to end on the real stack: the embedded engine behind the router, tiny Qwen3."""

from __future__ import annotations

import asyncio

import pytest
from miles_core.data.jsonl_source import JsonlDataSource
from miles_core.rollout.default_rollout import DefaultRollout
from miles_core.rollout.rollout_types import RolloutFnConstructorInput, RolloutFnEvalInput, RolloutFnTrainInput
from miles_core.rollout.train_data import samples_to_train_data

from miles_core import DynamicFilterOutput, FilterSpec, SampleStatus, hookimpl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tiny_qwen3):
    from miles_core.engines.local import start_engine
    from miles_core.router.local import start_router

    with start_engine(tiny_qwen3, device="cpu", random_seed=0) as engine:
        with start_router(worker_urls=[engine.url], health_check_interval=5.0) as router:
            yield router.url


class DropHalf:
    @hookimpl
    def miles_filters(self):
        def odd_groups_out(args, samples, **kwargs):
            keep = samples[0].group_index % 2 == 0
            return DynamicFilterOutput(keep=keep, reason=None if keep else "odd_group")

        yield FilterSpec(name="drop_half", description="drop every odd group", fn=odd_groups_out)


@pytest.fixture
def build(miles_args, write_jsonl, tiny_qwen3, stack, miles_plugin_manager, register_plugin):
    register_plugin(DropHalf(), name="drop_half_plugin")
    path = write_jsonl([{"prompt": f"What is {i} plus {i}?", "label": str(2 * i)} for i in range(8)])
    host, port = stack.removeprefix("http://").split(":")

    def make(**flags):
        values = dict(prompt_data=path, hf_checkpoint=str(tiny_qwen3), n_samples_per_prompt=4, rollout_batch_size=2,
                      global_batch_size=8, sglang_router_ip=host, sglang_router_port=int(port),
                      rm_type="deterministic_random", rollout_max_response_len=12, apply_chat_template=True,
                      log_passrate=True)
        values.update(flags)
        args = miles_args(**values)
        source = JsonlDataSource(args, plugin_manager=miles_plugin_manager)
        return DefaultRollout(RolloutFnConstructorInput(args, source, miles_plugin_manager)), args

    return make


def _train(rollout, rollout_id=0):
    return asyncio.run(rollout(RolloutFnTrainInput(rollout_id=rollout_id)))


def test_rollout_groups_from_the_engine_train(build, miles_plugin_manager):
    rollout, args = build()
    output = _train(rollout)
    assert len(output.samples) == 2 and all(len(group) == 4 for group in output.samples)
    for group in output.samples:
        for sample in group:
            sample.validate()
            assert sample.prompt.startswith("<|im_start|>user\n")
            assert 0 < sample.response_length <= 12
            assert len(sample.rollout_log_probs) == sample.response_length
            assert all(lp <= 0 for lp in sample.rollout_log_probs)
            assert sample.reward in (0.0, 1.0)
            assert sample.status in (SampleStatus.COMPLETED, SampleStatus.TRUNCATED)
            assert sample.weight_versions == ["0"]
    assert {"passrate/pass@1", "passrate/pass@4", "rollout/truncated_ratio"} <= set(output.metrics)

    batch = samples_to_train_data(args, output.samples, miles_plugin_manager.get("loss_estimators", "grpo"))
    assert len(batch["tokens"]) == 8 and batch["response_lengths"] == [s.response_length for g in output.samples for s in g]


def test_the_same_seed_gives_the_same_samples(build):
    def samples(seed):
        rollout, _ = build(rollout_seed=seed)
        return [s for g in _train(rollout).samples for s in g]

    first, again = samples(11), samples(11)
    assert [s.tokens for s in again] == [s.tokens for s in first]
    for a, b in zip(first, again, strict=True):  # batching on the engine may change the last float bits, never the tokens
        assert a.rollout_log_probs == pytest.approx(b.rollout_log_probs, abs=1e-4)
    assert [s.tokens for s in samples(12)] != [s.tokens for s in first]


def test_over_sampling_with_a_drop_half_filter_returns_the_requested_groups(build):
    rollout, _ = build(dynamic_sampling_filter="drop_half", rollout_batch_size=3, over_sampling_batch_size=3)
    output = _train(rollout)
    assert len(output.samples) == 3
    assert all(group[0].group_index % 2 == 0 for group in output.samples)
    assert output.metrics["rollout/dynamic_filter/drop_odd_group"] >= 1
    assert output.metrics["rollout/over_sampling/rounds"] >= 2


def test_eval_metrics_per_dataset(build, write_jsonl):
    easy = write_jsonl([{"prompt": "1+1?", "label": "2"}, {"prompt": "2+2?", "label": "4"}], name="easy.jsonl")
    hard = write_jsonl([{"prompt": "17*23?", "label": "391"}], name="hard.jsonl")
    rollout, _ = build(eval_prompt_data=["easy", easy, "hard", hard], n_samples_per_eval_prompt=2,
                       eval_max_response_len=4, eval_temperature=0.0)
    output = asyncio.run(rollout(RolloutFnEvalInput(rollout_id=0)))
    assert len(output.data["easy"]["samples"]) == 4 and len(output.data["hard"]["samples"]) == 2
    for name in ("easy", "hard"):
        assert 0.0 <= output.metrics[f"eval/{name}"] <= 1.0
        assert f"eval/{name}-truncated_ratio" in output.metrics and f"eval/{name}-pass@2" in output.metrics
        assert all(s.response_length <= 4 for s in output.data[name]["samples"])
    greedy = [s.tokens for s in output.data["easy"]["samples"][:2]]
    assert greedy[0] == greedy[1]  # temperature 0: both answers to a prompt are the same


def test_teacher_scores_the_student_tokens(build, stack, miles_plugin_manager):
    """--opd-teacher-url: the teacher (here the same model behind the router) scores each response by
    prefill; with the same weights and temperature 1 its log-probs are the engine's own."""
    rollout, args = build(opd_teacher_url=stack, rollout_temperature=1.0)
    groups = _train(rollout).samples
    samples = [s for g in groups for s in g]
    assert samples
    for sample in samples:
        assert len(sample.teacher_log_probs) == sample.response_length
        assert sample.teacher_log_probs == pytest.approx(sample.rollout_log_probs, abs=1e-3)
    batch = samples_to_train_data(args, samples, miles_plugin_manager.get("loss_estimators", "on_policy_distillation"))
    assert [len(t) for t in batch["teacher_log_probs"]] == batch["response_lengths"]
