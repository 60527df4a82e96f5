"""``miles models create|list`` and the checkpoints and tokenizers they write."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import pytest
from miles_models_qwen.commands import format_count
from miles_models_qwen.hf_parameters import count_parameters
from miles_models_qwen.presets import PRESETS, create_checkpoint, preset_architecture
from qwen_tiny import TINY_ARCHS


def miles_parser() -> argparse.ArgumentParser:
    """The ``miles`` CLI as the core builds it: subcommands added by ``miles_register_commands``."""
    from miles_core.plugins.manager import MilesPluginManager

    from miles_models_qwen import plugin

    pm = MilesPluginManager()
    pm.register_plugin(plugin, "models_qwen")
    parser = argparse.ArgumentParser(prog="miles")
    subparsers = parser.add_subparsers(dest="command")
    pm.hook.miles_register_commands(subparsers=subparsers)
    return parser


def run_cli(argv: list[str]) -> tuple[int, str]:
    args = miles_parser().parse_args(argv)
    out = io.StringIO()
    return args.func(args, stdout=out), out.getvalue()


def digests(directory: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(directory.iterdir())}


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_models_create_writes_a_loadable_checkpoint(tmp_path, arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / arch
    code, printed = run_cli(["models", "create", "--arch", arch.replace("_", "-"), "--preset", "tiny",
                             "--out", str(out), "--seed", "3"])
    assert code == 0 and "wrote" in printed
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched weights
    total, _ = count_parameters(preset_architecture(arch, "tiny"))
    assert model.num_parameters() == total < 1_000_000
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"
    batch = tokenizer([prompt, "hi"], return_tensors="pt", padding=True)
    generated = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert generated.shape == (2, batch["input_ids"].shape[1] + 4)


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    first = create_checkpoint("qwen3_moe", "tiny", tmp_path / "a", seed=5)
    second = create_checkpoint("qwen3-moe", "tiny", tmp_path / "b", seed=5)
    third = create_checkpoint("qwen3_moe", "tiny", tmp_path / "c", seed=6)
    assert digests(first) == digests(second)
    assert digests(first)["model.safetensors"] != digests(third)["model.safetensors"]
    assert digests(first)["tokenizer.json"] == digests(third)["tokenizer.json"]


def test_tiny_qwen3_tokenizer_contract(tiny_qwen3):
    """The stable contract other tests rely on: character tokens, Qwen specials, left padding."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3)
    assert len(tokenizer) == 103
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert tokenizer.padding_side == "left"
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    ids = tokenizer("ab c")["input_ids"]
    assert len(ids) == 4 and tokenizer.decode(ids) == "ab c"
    config = json.loads((tiny_qwen3 / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"] and config["eos_token_id"] == 2


def test_bpe_tokenizer_checkpoint(tmp_path):
    from transformers import AutoTokenizer

    out = create_checkpoint("qwen2", "tiny", tmp_path / "bpe", tokenizer="bpe", dtype="bfloat16")
    tokenizer = AutoTokenizer.from_pretrained(out)
    text = "<|im_start|>user\nWhat is 12 + 30? Ünïcode, 日本語 too.<|im_end|>\n"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) / 1.5, "common words are merged"
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == len(tokenizer) - 3  # specials follow the vocabulary
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == len(tokenizer) and config["dtype"] == "bfloat16"


def test_large_presets_write_shards_with_an_index(tmp_path):
    """Big presets are written in shards; shown here on a tiny one with a small shard limit."""
    from miles_models_qwen.random_weights import write_random_weights
    from transformers import AutoModelForCausalLM

    arch = preset_architecture("qwen3", "tiny")
    out = create_checkpoint("qwen3", "tiny", tmp_path / "sharded")
    (out / "model.safetensors").unlink()
    import torch

    files = write_random_weights(arch, out, seed=0, dtype=torch.float32, max_shard_bytes=64 * 1024)
    assert len(files) > 2 and files[-1].name == "model.safetensors.index.json"
    index = json.loads(files[-1].read_text())
    assert index["metadata"]["total_size"] == count_parameters(arch)[0] * 4
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not any(info.values())
    single = create_checkpoint("qwen3", "tiny", tmp_path / "single")
    reference = AutoModelForCausalLM.from_pretrained(single)
    expected = reference.state_dict()
    assert sorted(model.state_dict()) == sorted(expected)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in model.state_dict().items())


def test_models_list_shows_every_preset_with_parameter_counts():
    code, printed = run_cli(["models", "list"])
    assert code == 0
    for arch, presets in PRESETS.items():
        for name in presets:
            assert f"{arch.replace('_', '-')} " in printed and f" {name} " in printed
    assert "596.0M" in printed  # qwen3 0.6b, the released model's count
    assert "30.53B" in printed and "3.35B" in printed  # qwen3-moe 30b-a3b: total and active
    code, printed = run_cli(["models", "list", "--arch", "qwen3-moe", "--json"])
    rows = json.loads(printed)
    assert {row["preset"] for row in rows} == set(PRESETS["qwen3_moe"])
    assert format_count(80704) == "80.7K"


def test_released_shapes_have_the_released_parameter_counts():
    """Counts published for Qwen3-0.6B/1.7B, Qwen2.5-0.5B/1.5B and Qwen3-30B-A3B."""
    expected = {("qwen3", "0.6b"): 596_049_920, ("qwen3", "1.7b"): 1_720_574_976, ("qwen2", "0.5b"): 494_032_768,
                ("qwen2", "1.5b"): 1_543_714_304, ("qwen3_moe", "30b-a3b"): 30_532_122_624}
    for (arch, name), total in expected.items():
        assert count_parameters(preset_architecture(arch, name))[0] == total, (arch, name)


def test_create_refuses_a_non_empty_directory_and_unknown_presets(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    code, _ = run_cli(["models", "create", "--arch", "qwen3", "--preset", "tiny", "--out", str(tmp_path)])
    assert code == 2 and "not empty" in capsys.readouterr().err
    code, _ = run_cli(["models", "create", "--arch", "qwen3", "--preset", "huge", "--out", str(tmp_path / "x")])
    assert code == 2 and "tiny, small, medium, 0.6b, 1.7b" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        miles_parser().parse_args(["models", "create", "--arch", "llama", "--preset", "tiny", "--out", "x"])
