"""Build an HF model and shard it with FSDP2 (``fully_shard`` per decoder layer, then the root).

Three roles share this code: the **actor** (``AutoModelForCausalLM``, trained), the **reference**
(the same class, frozen, for KL) and the **critic** (``AutoModelForTokenClassification`` with one
label: the HF backbone plus a linear value head, trained with the value loss).

Weights are loaded in float32 (the optimizer's master copy); on GPUs the forward runs in bfloat16 with
float32 gradient reduction (``MixedPrecisionPolicy``), on CPU everything stays float32.

Loading (documented choice): with untied embeddings and more than one rank, **rank 0 reads the
checkpoint** and the other ranks build the model on the ``meta`` device; after sharding,
``set_model_state_dict(broadcast_from_rank0=True)`` streams every tensor from rank 0 and each rank keeps
its shard, so host memory holds one full copy per node instead of one per rank. Non-persistent buffers
(rotary frequencies) are broadcast the same way. Tied-embedding models (one parameter under two names)
are read by **every rank** instead, because a meta-built model cannot be re-tied after assignment.

Dropout is switched off in every role: the policy ratio must be exactly 1 on the first step, and the
log-prob pass must score what the training pass differentiates.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh

__all__ = ["Role", "resolve_attn_implementation", "build_sharded_model", "decoder_layers", "hf_checkpoint_dtype"]

logger = logging.getLogger(__name__)

Role = Literal["actor", "ref", "critic"]

ATTN_IMPLEMENTATIONS = ("flash_attention_2", "flash_attention_3", "sdpa", "eager", "flex_attention")


def resolve_attn_implementation(requested: str | None, device: torch.device) -> str:
    """The attention kernel to use: ``requested`` when it can run here, else ``sdpa`` with a warning.

    flash-attention needs CUDA and the ``flash_attn`` package; without them (CPU runs, laptops, CI) the
    fallback is PyTorch SDPA. ``sdpa`` is served by :mod:`~miles_core.training.fsdp.varlen_attention`
    (SDPA per packed sample), so packed micro-batches cost ``Σ len²`` attention, not ``(Σ len)²``.
    """
    from miles_core.training.fsdp.varlen_attention import register_varlen_sdpa

    requested = requested or "flash_attention_2"
    if requested not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"--attn-implementation {requested!r}: choose one of {', '.join(ATTN_IMPLEMENTATIONS)}")
    if requested.startswith("flash_attention"):
        from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

        available = is_flash_attn_2_available() if requested == "flash_attention_2" else is_flash_attn_3_available()
        if device.type != "cuda" or not available:
            why = "this rank has no CUDA device" if device.type != "cuda" else f"{requested} is not installed"
            warnings.warn(
                f"--attn-implementation {requested} cannot run here ({why}); falling back to sdpa. "
                "Pass --attn-implementation sdpa to silence this warning.",
                UserWarning, stacklevel=2,
            )
            requested = "sdpa"
    return register_varlen_sdpa() if requested == "sdpa" else requested


def hf_checkpoint_dtype(config) -> torch.dtype:
    """The dtype the checkpoint was saved in (what engines serve and what exports write)."""
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return dtype


def _model_class(role: Role):
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    return AutoModelForTokenClassification if role == "critic" else AutoModelForCausalLM


def _load_config(path: str, role: Role, attn_implementation: str):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    config._attn_implementation = attn_implementation
    for name in ("attention_dropout", "hidden_dropout", "classifier_dropout", "dropout", "resid_pdrop", "embd_pdrop"):
        if hasattr(config, name) or (role == "critic" and name == "classifier_dropout"):
            setattr(config, name, 0.0)
    if role == "critic":
        config.num_labels = 1
    config.use_cache = False
    return config


def _disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated transformer blocks (HF's ``_no_split_modules`` classes), each its own FSDP unit."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        base = getattr(model, getattr(model, "base_model_prefix", "model"), None)
        layers = list(getattr(base, "layers", []) or [])
    if not layers:
        raise ValueError(f"cannot find the decoder layers of {type(model).__name__} to shard")
    return layers


def build_sharded_model(
    path: str,
    role: Role,
    *,
    mesh: DeviceMesh,
    device: torch.device,
    attn_implementation: str,
    gradient_checkpointing: bool = False,
    cpu_offload: bool = False,
    seed: int = 1234,
) -> nn.Module:
    """Load the HF checkpoint at ``path`` for ``role`` and return it sharded over ``mesh``.

    :param cpu_offload: keep parameters, gradients and optimizer state on CPU between uses
        (``CPUOffloadPolicy``); only meaningful on GPUs.
    :param seed: seeds the critic's fresh value head identically on every rank.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    cls = _model_class(role)
    config = _load_config(path, role, attn_implementation)
    world_size = mesh.size()
    tied = bool(getattr(config, "tie_word_embeddings", False)) and role != "critic"
    rank0_broadcast = world_size > 1 and not tied
    rank = dist.get_rank() if dist.is_initialized() else 0

    torch.manual_seed(seed)  # the critic head is freshly initialised: same values on every rank
    full_state: dict[str, torch.Tensor] | None = None
    if not rank0_broadcast or rank == 0:
        model = cls.from_pretrained(path, config=config, dtype=torch.float32, trust_remote_code=True)
        if rank0_broadcast:
            full_state = {k: v.detach() for k, v in model.state_dict().items()}
            buffers = dict(model.named_buffers())
    else:
        with torch.device("meta"):
            model = cls.from_config(config, dtype=torch.float32, trust_remote_code=True)
    _disable_dropout(model)

    if gradient_checkpointing and role != "ref":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    fsdp_kwargs: dict = {"mesh": mesh}
    if device.type == "cuda":
        fsdp_kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if cpu_offload or role == "ref":
            fsdp_kwargs["offload_policy"] = CPUOffloadPolicy(pin_memory=True)
    elif cpu_offload:
        logger.info("--fsdp-cpu-offload has no effect on CPU ranks: parameters already live in host memory")
    for layer in decoder_layers(model):
        fully_shard(layer, **fsdp_kwargs)
    fully_shard(model, **fsdp_kwargs)

    if rank0_broadcast:
        set_model_state_dict(
            model, full_state if rank == 0 else {},
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True),
        )
        _broadcast_buffers(model, buffers if rank == 0 else {}, device)
        del full_state
    if role == "ref":
        model.requires_grad_(False)
        model.eval()
    return model


def _broadcast_buffers(model: nn.Module, rank0_buffers: dict[str, torch.Tensor], device: torch.device) -> None:
    """Give every rank rank 0's buffers (meta-built ranks have none; non-persistent ones are not in the
    state dict). Sizes travel first as objects, then each buffer as a tensor."""
    names = [name for name, _ in model.named_buffers()]
    meta = [rank0_buffers.get(n) for n in names] if dist.get_rank() == 0 else [None] * len(names)
    shapes = [(tuple(b.shape), b.dtype) if b is not None else None for b in meta]
    box = [shapes]
    dist.broadcast_object_list(box, src=0)
    for name, spec in zip(names, box[0], strict=True):
        if spec is None:
            continue
        shape, dtype = spec
        if dist.get_rank() == 0:
            tensor = rank0_buffers[name].to(device)
        else:
            tensor = torch.empty(shape, dtype=dtype, device=device)
        dist.broadcast(tensor, src=0)
        module_name, _, buffer_name = name.rpartition(".")
        module = model.get_submodule(module_name) if module_name else model
        persistent = buffer_name not in getattr(module, "_non_persistent_buffers_set", set())
        module.register_buffer(buffer_name, tensor, persistent=persistent)
        if hasattr(module, "original_inv_freq") and buffer_name == "inv_freq":
            module.original_inv_freq = tensor.clone()
