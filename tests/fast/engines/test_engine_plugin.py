"""The engine plugins: registration, the SGLang and embedded command lines, and why SGLang cannot run here."""

from __future__ import annotations

import argparse
import sys

from miles_core.engines.plugin import embedded_command, miles_add_arguments, sglang_command
from miles_core.engines.sglang_server import passthrough_flags, sglang_unavailable_reason


def run_args(**overrides) -> argparse.Namespace:
    values = dict(hf_checkpoint="/ckpt/qwen", rollout_num_gpus_per_engine=2, rollout_seed=42, seed=1234,
                  offload_rollout=False, colocate=False,
                  sglang_server_args={"mem-fraction-static": "0.8", "enable-dp-attention": True,
                                      "cuda-graph-bs": ["1", "2", "4"], "disable-radix-cache": False})
    values.update(overrides)
    return argparse.Namespace(**values)


def test_both_engines_are_registered_through_the_entry_point(miles_plugin_manager):
    registry = miles_plugin_manager.registry("engines")
    assert {"embedded", "sglang"} <= set(registry.names())
    assert registry.provenance("sglang").distribution == "miles-core"


def test_sglang_command_line():
    command = sglang_command(run_args(), "10.0.0.5", 31000, engine_index=3)
    assert command[:3] == [sys.executable, "-m", "sglang.launch_server"]
    assert command[3:] == [
        "--model-path", "/ckpt/qwen", "--host", "10.0.0.5", "--port", "31000", "--tp-size", "2",
        "--random-seed", "45", "--trust-remote-code", "--skip-server-warmup",
        "--mem-fraction-static", "0.8", "--enable-dp-attention", "--cuda-graph-bs", "1", "2", "4",
    ]


def test_sglang_memory_saver_follows_offload_and_own_flags_win_over_passthrough():
    command = sglang_command(run_args(offload_rollout=True, sglang_server_args={"tp-size": "8", "port": "1"}),
                             "127.0.0.1", 30000, 0)
    assert "--enable-memory-saver" in command
    assert command.count("--tp-size") == 1 and command[command.index("--tp-size") + 1] == "2"
    assert command.count("--port") == 1


def test_passthrough_flag_forms():
    assert passthrough_flags({"log-level": "INFO", "flag": True, "off": False, "many": ["a", "b"]}) == [
        "--log-level", "INFO", "--flag", "--many", "a", "b"]
    assert passthrough_flags(None) == []


def test_sglang_explains_why_it_cannot_run_here():
    reason = sglang_unavailable_reason()
    assert reason is not None and ("sglang" in reason or "CUDA" in reason or "GPU" in reason)


def test_embedded_command_line_uses_its_flags():
    parser = argparse.ArgumentParser()
    miles_add_arguments(parser)
    args = parser.parse_args(["--embedded-engine-device", "cpu", "--embedded-engine-max-batch-size", "8"])
    args.hf_checkpoint, args.rollout_seed = "/ckpt/qwen", 7
    command = embedded_command(args, "127.0.0.1", 30001, engine_index=1)
    assert command[:3] == [sys.executable, "-m", "miles_core.engines.embedded"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags == {"--hf-checkpoint": "/ckpt/qwen", "--host": "127.0.0.1", "--port": "30001", "--device": "cpu",
                     "--dtype": "auto", "--max-batch-size": "8", "--random-seed": "8", "--max-prefill-tokens": "16384"}


def test_the_engine_command_parses_the_documented_flags():
    from miles_core.engines.embedded.cli import build_parser

    args = build_parser().parse_args(["--hf-checkpoint", "m", "--port", "1", "--device", "cpu", "--dtype", "float32",
                                      "--random-seed", "3", "--max-batch-size", "4"])
    assert (args.hf_checkpoint, args.host, args.port, args.device, args.dtype, args.random_seed,
            args.max_batch_size) == ("m", "127.0.0.1", 1, "cpu", "float32", 3, 4)
