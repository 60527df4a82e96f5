"""``--sglang-*``/``--router-*`` passthrough and ``@FILE`` arguments."""

from __future__ import annotations

import pytest
from miles_core.config.arg_files import expand_arg_files
from miles_core.config.errors import ConfigError
from miles_core.config.passthrough import split_passthrough

KNOWN = {"--sglang-router-ip", "--sglang-router-port", "--sglang-server-concurrency", "--rollout-batch-size", "--colocate"}


def test_values_flags_and_lists_are_collected():
    rest, collected = split_passthrough(
        ["--sglang-mem-fraction-static", "0.8", "--sglang-enable-dp-attention", "--rollout-batch-size", "4",
         "--sglang-context-length=32768", "--sglang-cuda-graph-bs", "1", "2", "4", "--router-policy", "cache_aware",
         "--sglang-log-level", "INFO", "--sglang-enable-ep-moe"],
        KNOWN,
    )
    assert rest == ["--rollout-batch-size", "4"]
    assert collected["sglang_server_args"] == {
        "mem-fraction-static": "0.8", "enable-dp-attention": True, "context-length": "32768",
        "cuda-graph-bs": ["1", "2", "4"], "log-level": "INFO", "enable-ep-moe": True,
    }
    assert collected["router_args"] == {"policy": "cache_aware"}


def test_real_flags_with_the_prefix_are_left_to_argparse():
    rest, collected = split_passthrough(
        ["--sglang-router-ip", "10.0.0.1", "--sglang-router-port=30000", "--sglang-server-concurrency", "64"], KNOWN)
    assert rest == ["--sglang-router-ip", "10.0.0.1", "--sglang-router-port=30000", "--sglang-server-concurrency", "64"]
    assert collected == {"sglang_server_args": {}, "router_args": {}}


def test_negative_numbers_are_values_and_later_flags_win():
    _, collected = split_passthrough(["--sglang-random-thing", "-1", "--sglang-x", "a", "--sglang-x", "b"], KNOWN)
    assert collected["sglang_server_args"] == {"random-thing": "-1", "x": "b"}


def test_bare_prefix_is_an_error():
    with pytest.raises(ConfigError, match="--sglang-: expected --sglang-<flag>"):
        split_passthrough(["--sglang-"], KNOWN)


def test_parse_and_validate_stores_passthrough(parse):
    args = parse("--sglang-mem-fraction-static", "0.7", "--sglang-enable-overlap-schedule", "--router-balance-abs-threshold", "8")
    assert args.sglang_server_args == {"mem-fraction-static": "0.7", "enable-overlap-schedule": True}
    assert args.router_args == {"balance-abs-threshold": "8"}


def test_arg_files_are_expanded_with_comments_and_quotes(tmp_path, monkeypatch):
    inner = tmp_path / "inner.args"
    inner.write_text("--lr 2e-6  # the learning rate\n")
    outer = tmp_path / "outer.args"
    outer.write_text(f"# a run\n--rollout-batch-size 8\n--rollout-stop 'two words' \"</s>\"\n@{inner}\n")
    assert expand_arg_files(["train", f"@{outer}", "--lr", "1e-6"]) == [
        "train", "--rollout-batch-size", "8", "--rollout-stop", "two words", "</s>", "--lr", "2e-6", "--lr", "1e-6"]


def test_missing_or_recursive_arg_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="@nope.args: no such arguments file"):
        expand_arg_files(["@nope.args"])
    loop = tmp_path / "loop.args"
    loop.write_text(f"@{loop}\n")
    with pytest.raises(ConfigError, match="nest more than 8 deep"):
        expand_arg_files([f"@{loop}"])


def test_arg_file_through_parse_and_validate(parse, tmp_path):
    flags = tmp_path / "run.args"
    flags.write_text("--n-samples-per-prompt 4\n--global-batch-size 8\n--sglang-log-level INFO\n")
    args = parse(f"@{flags}")
    assert args.num_steps_per_rollout == 2 and args.sglang_server_args == {"log-level": "INFO"}
    assert "n_samples_per_prompt" in args.explicit_flags
