"""``resolve_model_spec``: by --model-spec name, else the unique spec matching a checkpoint's HF config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from miles_core.plugins.errors import UnknownNameError
from miles_core.plugins.manager import MilesPluginManager
from miles_core.training.model_specs import ModelSpecResolutionError, resolve_model_spec

from miles_core import ModelSpec, hookimpl


def manager(*plugins) -> MilesPluginManager:
    pm = MilesPluginManager()
    for index, plugin in enumerate(plugins):
        pm.register_plugin(plugin, f"plugin{index}")
    return pm


def qwen_manager() -> MilesPluginManager:
    from miles_models_qwen import plugin

    return manager(plugin)


class MistralPlugin:
    @hookimpl
    def miles_model_specs(self):
        yield ModelSpec(name="mistral", description="Mistral dense models", hf_architectures=("MistralForCausalLM",),
                        hf_model_types=("mistral",))


class AnotherQwen3Plugin:
    @hookimpl
    def miles_model_specs(self):
        yield ModelSpec(name="my_qwen3", description="a fork of the Qwen3 spec", hf_model_types=("qwen3",))


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "qwen3_moe", "qwen2_moe"])
def test_checkpoint_directory_resolves_to_its_family(tiny_checkpoints, arch):
    assert resolve_model_spec(qwen_manager(), tiny_checkpoints[arch]).name == arch


def test_config_forms_and_explicit_name(tiny_qwen3):
    pm = qwen_manager()
    config = json.loads((tiny_qwen3 / "config.json").read_text())
    assert resolve_model_spec(pm, config).name == "qwen3"
    assert resolve_model_spec(pm, tiny_qwen3 / "config.json").name == "qwen3"
    assert resolve_model_spec(pm, {"model_type": "qwen2"}).name == "qwen2"  # model_type alone is enough
    from transformers import AutoConfig

    assert resolve_model_spec(pm, AutoConfig.from_pretrained(tiny_qwen3)).name == "qwen3"
    # --model-spec wins over matching (a Qwen3 checkpoint read with another spec is the user's call).
    assert resolve_model_spec(pm, tiny_qwen3, name="qwen2").name == "qwen2"
    with pytest.raises(UnknownNameError, match=r"--model-spec 'qwen4'.*qwen2, qwen2_moe, qwen3, qwen3_moe"):
        resolve_model_spec(pm, tiny_qwen3, name="qwen4")


def test_unknown_architecture_names_it_and_the_installed_specs():
    pm = qwen_manager()
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    with pytest.raises(ModelSpecResolutionError) as error:
        resolve_model_spec(pm, config)
    message = str(error.value)
    assert "LlamaForCausalLM" in message and "'llama'" in message
    assert "qwen3 (Qwen3ForCausalLM, qwen3" in message and "--model-spec" in message


def test_qwen_checkpoint_without_the_plugin_suggests_pip_install(tiny_qwen3):
    with pytest.raises(ModelSpecResolutionError, match=r"Installed model specs: mistral .*pip install miles-models-qwen"):
        resolve_model_spec(manager(MistralPlugin()), tiny_qwen3)
    with pytest.raises(ModelSpecResolutionError, match=r"Installed model specs: none"):
        resolve_model_spec(manager(), tiny_qwen3)


def test_two_matching_specs_ask_for_a_name(tiny_qwen3):
    pm = qwen_manager()
    pm.register_plugin(AnotherQwen3Plugin(), "fork")
    # The qwen3 spec names the HF architecture, the fork only the model type: the more specific one wins.
    assert resolve_model_spec(pm, tiny_qwen3).name == "qwen3"
    with pytest.raises(ModelSpecResolutionError, match=r"several model specs match .*: my_qwen3 .*, qwen3 .*--model-spec"):
        resolve_model_spec(pm, {"model_type": "qwen3"})


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_model_spec(qwen_manager(), tmp_path)


def test_installed_plugin_registers_the_specs_and_stays_light():
    """Through the entry point, without importing torch, transformers or megatron."""
    code = (
        "import sys, json\n"
        "from miles_core.plugins.manager import build_plugin_manager\n"
        "pm = build_plugin_manager()\n"
        "names = pm.registry('model_specs').names()\n"
        "heavy = [m for m in ('torch', 'transformers', 'megatron', 'tokenizers') if m in sys.modules]\n"
        "print(json.dumps({'names': names, 'heavy': heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"qwen2", "qwen3", "qwen3_moe", "qwen2_moe"} <= set(report["names"])
    assert report["heavy"] == []
