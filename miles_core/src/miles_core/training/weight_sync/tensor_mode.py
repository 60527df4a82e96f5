"""``tensor`` mode: buckets of weights posted in memory to ``/update_weights_from_tensor``.

On the embedded engine each bucket travels as the base64 text of a safetensors blob (safetensors
cannot run code when loaded, unlike a pickle). Real SGLang expects its own pickled
``MultiprocessingSerializer`` payload holding CUDA-IPC handles, which only a process on the same GPU
can produce; this backend does not speak that format, and says so (see :data:`SGLANG_TENSOR_MODE_ERROR`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from safetensors.torch import save as safetensors_save

from miles_core.training.weight_sync.engine_http import EngineCaller
from miles_core.training.weight_sync.hf_tensors import NamedTensor

__all__ = ["SGLANG_TENSOR_MODE_ERROR", "encode_bucket", "request_body", "send_tensor_buckets"]

SGLANG_TENSOR_MODE_ERROR = (
    "--update-weight-transfer-mode tensor against SGLang servers needs SGLang's CUDA-IPC "
    "MultiprocessingSerializer payload, which the FSDP backend does not produce. Use "
    "--update-weight-transfer-mode disk (a safetensors directory the engines load; works colocated) or, when "
    "the engines have GPUs of their own, --update-weight-transfer-mode distributed (an NCCL broadcast)."
)


def encode_bucket(bucket: list[NamedTensor]) -> str:
    """The base64 text of a safetensors blob holding the bucket's tensors (moved to CPU)."""
    return _encode(bucket).decode("ascii")


def _encode(bucket: list[NamedTensor]) -> bytes:
    blob = safetensors_save({name: tensor.detach().cpu().contiguous() for name, tensor in bucket})
    return base64.b64encode(blob)


def request_body(bucket: list[NamedTensor], *, last: bool, weight_version: str) -> bytes:
    """The JSON body of one ``/update_weights_from_tensor`` call, built around the base64 bytes.

    Base64 needs no JSON escaping, so the (large) string is spliced in rather than run through
    ``json.dumps``, which would scan it character by character (a third of the sync time on CPU).
    """
    rest = {"load_format": "safetensors", "flush_cache": last}
    if last:
        rest["weight_version"] = weight_version
    return b'{"serialized_named_tensors": ["' + _encode(bucket) + b'"], ' + json.dumps(rest)[1:].encode()


def send_tensor_buckets(caller: EngineCaller, buckets: Iterable[list[NamedTensor]], *, weight_version: str) -> int:
    """Post each bucket to every engine; the last post sets ``weight_version`` and flushes the cache.

    One bucket is encoded and in flight at a time. Returns the number of bytes of tensors sent.
    """
    sent = 0
    pending = None  # hold one bucket back so the last post is known to be the last
    for bucket in buckets:
        if pending is not None:
            sent += _post(caller, pending, last=False, weight_version=weight_version)
        pending = bucket
    if pending is None:
        raise ValueError("the model has no tensors to send")
    sent += _post(caller, pending, last=True, weight_version=weight_version)
    return sent


def _post(caller: EngineCaller, bucket: list[NamedTensor], *, last: bool, weight_version: str) -> int:
    caller.post_all("/update_weights_from_tensor", request_body(bucket, last=last, weight_version=weight_version))
    return sum(t.numel() * t.element_size() for _, t in bucket)
