"""Cross-flag checks: each bad combination is an error naming the flags; derived defaults are filled."""

from __future__ import annotations

import pytest
from miles_core.config.errors import ConfigError
from miles_core.config.notices import ConfigWarning


def test_minimal_command_line_gets_the_derived_defaults(parse, tmp_path):
    args = parse()
    assert args.global_batch_size == 4 and args.num_steps_per_rollout == 1
    assert args.eps_clip_high == args.eps_clip == 0.2
    assert args.over_sampling_batch_size == 4
    assert args.offload_train is False and args.offload_rollout is False
    assert args.disable_grpo_std_normalization is True  # n_samples_per_prompt == 1: a group of one has no std
    assert args.eval_temperature == args.rollout_temperature and args.eval_top_p == args.rollout_top_p
    assert args.eval_datasets == []
    assert args.run_dir == str(tmp_path / "run")
    assert args.train_backend == "fsdp"
    assert args.sglang_server_args == {} and args.router_args == {}


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--use-dynamic-batch-size"], "--use-dynamic-batch-size needs --max-tokens-per-gpu"),
        (["--debug-rollout-only", "--debug-train-only"], "--debug-rollout-only and --debug-train-only are mutually exclusive"),
        (["--load-debug-rollout-data", "d/{rollout_id}.pt", "--debug-rollout-only"],
         "--load-debug-rollout-data .* cannot be combined with --debug-rollout-only"),
        (["--rm-type", "remote_rm"], "--rm-type remote_rm needs --rm-url"),
        (["--rm-url", "http://x", "--rm-type", "test_rm"], "--rm-url is only used by --rm-type remote_rm"),
        (["--over-sampling-batch-size", "2"], "--over-sampling-batch-size 2 must be at least --rollout-batch-size 4"),
        (["--eval-interval", "5"], "--eval-interval needs --eval-prompt-data"),
        (["--save-interval", "5"], "--save-interval 5 needs --save"),
        (["--save-hf", "hf/{rollout_id}"], "--save-hf .* needs --save"),
        (["--kl-coef", "0.1", "--kl-loss-coef", "0.1", "--use-kl-loss"],
         "--kl-coef 0.1 .* and --kl-loss-coef 0.1 .* cannot both be non-zero"),
        (["--use-tis", "--use-rollout-logprobs"], "--use-tis .* --use-rollout-logprobs .* mutually exclusive"),
        (["--tis-clip-low", "3"], "--tis-clip-low 3.0 must not exceed --tis-clip 2.0"),
        (["--eps-clip-c", "0.5"], "--eps-clip-c 0.5 must be greater than 1"),
        (["--loss-type", "custom_loss"], "--loss-type custom_loss needs --custom-loss-function-path"),
        (["--enable-mtp-training"], "--enable-mtp-training needs --mtp-num-layers > 0"),
        (["--profile-step-start", "5", "--profile-step-end", "2"], "--profile-step-end 2 is before --profile-step-start 5"),
        (["--rollout-max-context-len", "100", "--rollout-max-prompt-len", "100"],
         "--rollout-max-prompt-len 100 must be at most --rollout-max-context-len 100 − 1"),
        (["--rollout-max-context-len", "100", "--rollout-max-response-len", "100"],
         "--rollout-max-response-len 100 leaves no room for a prompt"),
        (["--num-rollout", "3", "--num-epoch", "2"], "--num-rollout 3 and --num-epoch 2 both set the run's length"),
        (["--sglang-router-ip", "10.0.0.1"], "--sglang-router-ip and --sglang-router-port name an external router"),
        (["--tensor-model-parallel-size", "2"], "--tensor-model-parallel-size 2 needs --train-backend megatron"),
        (["--context-parallel-size", "2"], "--context-parallel-size 2 needs --train-backend megatron"),
        (["--sequence-parallel"], "--sequence-parallel needs --tensor-model-parallel-size > 1"),
        (["--actor-num-gpus-per-node", "3", "--global-batch-size", "4"],
         "--global-batch-size 4 does not split over the 3 data-parallel ranks"),
        (["--train-backend", "megatron", "--actor-num-gpus-per-node", "4", "--tensor-model-parallel-size", "3"],
         "the actor's 4 GPUs .* are not a multiple of .* = 3"),
        (["--rollout-num-gpus", "3", "--rollout-num-gpus-per-engine", "2"],
         "--rollout-num-gpus 3 is not a multiple of --rollout-num-gpus-per-engine 2"),
        (["--colocate", "--actor-num-gpus-per-node", "3", "--rollout-num-gpus-per-engine", "2", "--global-batch-size", "3",
          "--rollout-batch-size", "3"], "--colocate puts the engines on the actor's 3 GPUs"),
        (["--sglang-model-path", "/x"], "--sglang-model-path is set by Miles; use --hf-checkpoint instead"),
        (["--sglang-tp-size", "4"], "--sglang-tp-size 4 differs from --rollout-num-gpus-per-engine 1"),
        (["--router-port", "9000"], "--router-port is set by Miles"),
        (["--custom-loss-function-path", "json:loads"], "--custom-loss-function-path is only called with --loss-type custom_loss"),
        (["--train-backend", "megatron", "--use-kl-loss"], "--use-kl-loss / --kl-coef need the reference model: pass --ref-load"),
    ],
)
def test_bad_combination_is_an_error_naming_the_flags(parse, flags, message):
    with pytest.raises(ConfigError, match=message):
        parse(*flags)


def test_prompt_data_is_required_and_must_exist(parse, model_dir, tmp_path):
    base = ["--hf-checkpoint", str(model_dir), "--rollout-batch-size", "2", "--actor-num-gpus-per-node", "1",
            "--run-dir", str(tmp_path / "r")]
    with pytest.raises(ConfigError, match="--prompt-data is required"):
        parse(*base, base=False)
    with pytest.raises(ConfigError, match="--prompt-data .*missing.jsonl: no such file"):
        parse(*base, "--prompt-data", str(tmp_path / "missing.jsonl"), base=False)
    with pytest.raises(ConfigError, match="is a directory"):
        parse(*base, "--prompt-data", str(tmp_path), base=False)
    # Not needed when rollouts are replayed, in train-only mode, or with another data source.
    assert parse(*base, "--load-debug-rollout-data", "d_{rollout_id}.pt", base=False).debug_train_only is True
    assert parse(*base, "--data-source", "test_source", base=False).prompt_data is None


def test_hf_checkpoint_is_required_and_needs_a_config(parse, prompt_file, tmp_path):
    base = ["--prompt-data", str(prompt_file), "--rollout-batch-size", "2", "--actor-num-gpus-per-node", "1"]
    with pytest.raises(ConfigError, match="--hf-checkpoint is required"):
        parse(*base, base=False)
    with pytest.raises(ConfigError, match="no such directory"):
        parse(*base, "--hf-checkpoint", str(tmp_path / "nope"), base=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no config.json in this directory"):
        parse(*base, "--hf-checkpoint", str(empty), base=False)


def test_eval_prompt_data_is_name_path_pairs(parse, prompt_file):
    args = parse("--eval-prompt-data", "aime", str(prompt_file), "gsm8k", str(prompt_file), "--eval-interval", "2",
                 "--eval-temperature", "0.6")
    assert args.eval_datasets == [["aime", str(prompt_file)], ["gsm8k", str(prompt_file)]]
    assert args.eval_temperature == 0.6 and args.eval_top_k == args.rollout_top_k
    with pytest.raises(ConfigError, match="--eval-prompt-data takes NAME PATH pairs"):
        parse("--eval-prompt-data", str(prompt_file))
    with pytest.raises(ConfigError, match="--eval-prompt-data aime nope.jsonl: no such file"):
        parse("--eval-prompt-data", "aime", "nope.jsonl")
    with pytest.raises(ConfigError, match="dataset name 'a' is given twice"):
        parse("--eval-prompt-data", "a", str(prompt_file), "a", str(prompt_file))


def test_load_debug_rollout_data_implies_train_only(parse):
    args = parse("--load-debug-rollout-data", "dump/{rollout_id}.pt")
    assert args.debug_train_only is True


def test_colocate_implies_offload_and_ignores_rollout_gpus(parse):
    with pytest.warns(ConfigWarning, match="--rollout-num-gpus 5 is ignored with --colocate"):
        args = parse("--colocate", "--rollout-num-gpus", "5", allow_warnings=True)
    assert args.offload_train is True and args.offload_rollout is True
    assert args.rollout_num_gpus == 1  # the actor's GPUs
    assert args.sglang_server_args["disable-piecewise-cuda-graph"] is True
    args = parse("--colocate", "--no-offload-train")
    assert args.offload_train is False and args.offload_rollout is True
    args = parse("--colocate", "--sglang-enforce-piecewise-cuda-graph")
    assert "disable-piecewise-cuda-graph" not in args.sglang_server_args


def test_offload_is_both(parse):
    args = parse("--offload")
    assert (args.offload_train, args.offload_rollout) == (True, True)


def test_eps_clip_high_and_log_probs_budget_follow_their_base(parse):
    args = parse("--eps-clip", "0.1", "--use-dynamic-batch-size", "--max-tokens-per-gpu", "2048")
    assert args.eps_clip_high == 0.1
    assert args.log_probs_max_tokens_per_gpu == 2048
    assert parse("--eps-clip-high", "0.28").eps_clip_high == 0.28


def test_kl_loss_coef_without_use_kl_loss_warns(parse):
    with pytest.warns(ConfigWarning, match="--kl-loss-coef 0.1 has no effect without --use-kl-loss"):
        parse("--kl-loss-coef", "0.1", allow_warnings=True)


def test_true_on_policy_asks_the_engines_for_deterministic_inference(parse):
    assert parse("--true-on-policy-mode").sglang_server_args == {"enable-deterministic-inference": True}


def test_rollout_max_prompt_len_defaults_to_context_minus_one(parse):
    assert parse("--rollout-max-context-len", "512").rollout_max_prompt_len == 511


def test_bad_values_are_rejected_by_type(parse):
    with pytest.raises(ConfigError, match="argument --rollout-batch-size: expected an integer ≥ 1, got '0'"):
        parse("--rollout-batch-size", "0")
    with pytest.raises(ConfigError, match="argument --rollout-top-p: expected a number in \\(0, 1\\], got '1.5'"):
        parse("--rollout-top-p", "1.5")
    with pytest.raises(ConfigError, match="argument --apply-chat-template-kwargs: expected a JSON object"):
        parse("--apply-chat-template-kwargs", "[1]")
    with pytest.raises(ConfigError, match="invalid choice: 'k9'"):
        parse("--kl-loss-type", "k9")


def test_unknown_flag_suggests_the_close_one(parse):
    with pytest.raises(ConfigError, match=r"unrecognized arguments: --rollout-batch-sizes 4 .*did you mean --rollout-batch-size\?"):
        parse("--rollout-batch-sizes", "4")


def test_abbreviations_are_not_accepted(parse):
    with pytest.raises(ConfigError, match="unrecognized arguments: --rollout-batch"):
        parse("--rollout-batch", "4")


def test_ppo_like_estimator_fills_critic_defaults(parse, tmp_path):
    save = str(tmp_path / "ckpt")
    args = parse("--advantage-estimator", "test_critic_estimator", "--lr", "2e-6", "--save", save)
    assert args.use_critic is True
    assert args.critic_lr == 2e-6 and args.critic_save == save + "_critic" and args.critic_lr_warmup_iters == 0
    with pytest.raises(ConfigError, match="trains a critic, .* so --kl-coef must be 0"):
        parse("--advantage-estimator", "test_critic_estimator", "--kl-coef", "0.1")
    assert parse().use_critic is False


def test_distillation_estimator_needs_a_teacher(parse):
    with pytest.raises(ConfigError, match="distils from a teacher: pass --opd-teacher-url"):
        parse("--advantage-estimator", "test_teacher_estimator")
    assert parse("--advantage-estimator", "test_teacher_estimator", "--opd-teacher-url", "http://t:1").use_critic is False


def test_debug_modes_turn_colocate_off_with_a_warning(parse):
    with pytest.warns(ConfigWarning, match="--colocate is ignored with --debug-rollout-only"):
        args = parse("--colocate", "--debug-rollout-only", allow_warnings=True)
    assert args.colocate is False


def test_run_dir_defaults_to_a_timestamp(parse, model_dir, prompt_file):
    args = parse("--hf-checkpoint", str(model_dir), "--prompt-data", str(prompt_file), "--rollout-batch-size", "2",
                 "--actor-num-gpus-per-node", "1", base=False)
    assert args.run_dir.startswith("runs/") and len(args.run_dir) == len("runs/20260101-120000")



def test_a_bare_command_line_lists_every_missing_required_flag(parse):
    with pytest.raises(ConfigError) as info:
        parse(base=False)
    assert str(info.value) == (
        "missing required flags: --hf-checkpoint PATH (the HF model directory); --prompt-data FILE (a JSONL file of "
        "prompts); --rollout-batch-size N (prompts per rollout) or --global-batch-size N. See 'miles train --help', "
        "or start from examples/demo.args"
    )
