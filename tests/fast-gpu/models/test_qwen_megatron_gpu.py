"""On a GPU: megatron-core GPTModel built from converted tiny Qwen weights gives HF's logits.

The CPU suite (tests/fast/models) covers the local spec under megatron-core 0.16 with a CUDA->CPU shim;
this one runs the real CUDA paths of the installed megatron-core (0.19 on the GPU image): the
all-to-all MoE token dispatcher, and, when Transformer Engine is importable, the TE layer spec whose
fused-norm and grouped-expert parameter names the mapping must produce.

Weights are perturbed (norms away from 1, biases away from 0) so a swapped or dropped tensor shows.
Tolerance: float32 on both sides, logits within 1e-3 absolute (TE and cuBLAS reorder sums).
"""

from __future__ import annotations

import argparse
import os
import socket

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

ARCHS = ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe")
LOGITS_ATOL = 1e-3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def megatron_world():
    pytest.importorskip("megatron.core")
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(_free_port())
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(1, 1)
    model_parallel_cuda_manual_seed(0)
    yield
    parallel_state.destroy_model_parallel()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def specs():
    from miles_core.plugins.manager import MilesPluginManager

    from miles_models_qwen import plugin

    pm = MilesPluginManager()
    pm.register_plugin(plugin, "models_qwen")
    return pm.registry("model_specs")


def perturbed_hf_model(arch: str, tmp_path):
    from miles_models_qwen.presets import create_checkpoint
    from transformers import AutoModelForCausalLM

    path = create_checkpoint(arch, "tiny", tmp_path / arch, seed=0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return path, model.cuda().eval()


def build_gpt_model(spec, hf_config, transformer_impl: str, grouped_gemm: bool = False):
    from megatron.core.models.gpt import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig

    kwargs = spec.transformer_config(hf_config)
    run = dict(params_dtype=torch.float32, bias_dropout_fusion=False, apply_rope_fusion=False,
               masked_softmax_fusion=False, gradient_accumulation_fusion=False, persist_layer_norm=False)
    if kwargs.get("num_moe_experts"):
        run.update(moe_token_dispatcher_type="alltoall", moe_grouped_gemm=grouped_gemm)
    config = TransformerConfig(**kwargs, **run)
    layer_spec = spec.layer_spec(argparse.Namespace(transformer_impl=transformer_impl), config)
    return GPTModel(config, layer_spec, **spec.gpt_model_kwargs(hf_config)).cuda().eval()


def check_against_hf(spec, hf_model, megatron_model) -> float:
    from miles_models_qwen import MegatronLayout

    layout = MegatronLayout.from_names(megatron_model.state_dict())
    hf_state = {name: tensor.detach() for name, tensor in hf_model.state_dict().items()}
    converted = dict(spec.hf_to_megatron(hf_model.config, hf_state.items(), layout=layout))
    model_names = {name for name in megatron_model.state_dict() if not name.endswith("_extra_state")}
    assert set(converted) == model_names
    missing, unexpected = megatron_model.load_state_dict(converted, strict=False)
    assert not unexpected and all(name.endswith("_extra_state") for name in missing)

    input_ids = torch.randint(0, hf_model.config.vocab_size, (3, 17),
                              generator=torch.Generator().manual_seed(7)).cuda()
    batch, length = input_ids.shape
    position_ids = torch.arange(length, device="cuda").unsqueeze(0).expand(batch, -1)
    mask = torch.ones(length, length, dtype=torch.bool, device="cuda").triu(1).view(1, 1, length, length)
    with torch.no_grad():
        expected = hf_model(input_ids).logits
        actual = megatron_model(input_ids, position_ids, mask)
    diff = (actual.float() - expected.float()).abs().max().item()
    assert diff < LOGITS_ATOL, diff

    from miles_models_qwen.hf_parameters import iter_hf_parameters

    from miles_models_qwen import read_architecture

    exported = dict(spec.megatron_to_hf(hf_model.config, megatron_model.state_dict().items()))
    assert set(exported) == {p.name for p in iter_hf_parameters(read_architecture(hf_model.config))}
    for name, tensor in exported.items():  # hub names; compare with HF's per-expert view of its fused experts
        if ".mlp.experts." in name and name.split(".")[5].isdigit():
            layer, expert, proj = int(name.split(".")[2]), int(name.split(".")[5]), name.split(".")[6]
            experts = hf_model.model.layers[layer].mlp.experts
            width = experts.down_proj.shape[-1]
            reference = {"gate_proj": experts.gate_up_proj[expert][:width], "up_proj": experts.gate_up_proj[expert][width:],
                         "down_proj": experts.down_proj[expert]}[proj]
        else:
            reference = hf_state[name]
        assert torch.equal(tensor, reference), name
    return diff


@pytest.mark.parametrize("arch", ARCHS)
def test_local_spec_on_gpu_matches_hf(megatron_world, specs, tmp_path, arch):
    _, hf_model = perturbed_hf_model(arch, tmp_path)
    spec = specs.get(arch)
    diff = check_against_hf(spec, hf_model, build_gpt_model(spec, hf_model.config, "local"))
    print(f"{arch} local spec on GPU: max |megatron - hf| logits = {diff:.2e}")


@pytest.mark.parametrize("arch", ARCHS)
def test_transformer_engine_spec_matches_hf(megatron_world, specs, tmp_path, arch):
    pytest.importorskip("transformer_engine")
    _, hf_model = perturbed_hf_model(arch, tmp_path)
    spec = specs.get(arch)
    model = build_gpt_model(spec, hf_model.config, "transformer_engine", grouped_gemm=True)
    diff = check_against_hf(spec, hf_model, model)
    print(f"{arch} TE spec on GPU: max |megatron - hf| logits = {diff:.2e}")
