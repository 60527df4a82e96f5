"""The embedded engine without HTTP: requests in, SGLang-shaped results out.

:class:`EmbeddedEngine` tokenizes prompts, expands ``n``, gives every sequence its seeded generator,
hands sequences to the :class:`~miles_core.engines.embedded.scheduler.Scheduler` and awaits their
results on the asyncio side. The HTTP server (``server.py``, ``openai_api.py``) is a thin layer over it,
and tests can drive it directly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import torch

from miles_core.engines.embedded.detokenize import IncrementalDetokenizer
from miles_core.engines.embedded.model_runner import ModelRunner
from miles_core.engines.embedded.params import GenerateCall, PromptRequest, RequestError
from miles_core.engines.embedded.scheduler import Scheduler
from miles_core.engines.embedded.sequence import Sequence
from miles_core.engines.embedded.weights import (
    MemoryState,
    WeightGroups,
    WeightUpdateError,
    decode_safetensors_buckets,
    load_named_tensors,
    read_checkpoint,
)

logger = logging.getLogger(__name__)

_SEED_MODULUS = 2**63 - 1


class EngineUnavailable(RuntimeError):
    """Generation is refused for now (memory released, engine broken): HTTP 503."""


class EmbeddedEngine:
    """A transformers model behind SGLang's request semantics, with continuous batching."""

    def __init__(self, model_path: str | Path, *, device: str = "auto", dtype: str = "auto",
                 max_batch_size: int = 64, max_prefill_tokens: int = 16384, random_seed: int | None = None,
                 served_model_name: str | None = None) -> None:
        self.runner = ModelRunner(model_path, device=device, dtype=dtype)
        self.scheduler = Scheduler(self.runner, max_batch_size=max_batch_size, max_prefill_tokens=max_prefill_tokens)
        self.random_seed = secrets.randbelow(2**31) if random_seed is None else int(random_seed)
        self.served_model_name = served_model_name or str(model_path)
        self.model_path = str(model_path)
        self.memory = MemoryState()
        self.weight_groups = WeightGroups()
        self.started_at = time.time()
        self._request_counter = itertools.count()

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.stop()

    @property
    def weight_version(self) -> str:
        return self.scheduler.weight_version

    @property
    def tokenizer(self):
        return self.runner.tokenizer

    # ------------------------------------------------------------------------------------ generation

    def check_available(self) -> None:
        if self.scheduler.error is not None:
            raise EngineUnavailable(f"the engine failed and must be restarted: {self.scheduler.error!r}")
        released = self.memory.blocking_generation()
        if released:
            raise EngineUnavailable(
                f"cannot generate: memory released ({', '.join(released)}); call /resume_memory_occupation first"
            )

    def _sequences(self, call: GenerateCall, sink) -> list[Sequence]:
        """Tokenize and check every prompt, expand ``n`` samples, seed each sequence."""
        sequences: list[Sequence] = []
        position = 0
        for prompt in call.prompts:
            prompt_ids = self._prompt_ids(prompt)
            room = self.runner.context_length - len(prompt_ids)
            if room < 0 or (room == 0 and prompt.params.max_new_tokens > 0):
                raise RequestError(
                    f"The input ({len(prompt_ids)} tokens) is longer than the model's context length "
                    f"({self.runner.context_length} tokens)."
                )
            samples = prompt.params.n
            for j in range(samples):
                seed = self._seed(prompt, j)
                needs_text = call.stream or bool(prompt.params.stop)
                sequences.append(Sequence(
                    seq_id=prompt.rid if samples == 1 else f"{prompt.rid}-{j}",
                    rid=prompt.rid,
                    index=position,
                    prompt_ids=prompt_ids,
                    params=prompt.params,
                    max_new_tokens=min(prompt.params.max_new_tokens, room),
                    generator=None if prompt.params.greedy else torch.Generator().manual_seed(seed),
                    sink=sink,
                    stream=call.stream,
                    return_logprob=prompt.return_logprob,
                    logprob_start_len=prompt.logprob_start_len,
                    top_logprobs_num=prompt.top_logprobs_num,
                    return_text_in_logprobs=prompt.return_text_in_logprobs,
                    detokenizer=IncrementalDetokenizer(self.runner.scheduler_tokenizer,
                                                       prompt.params.skip_special_tokens) if needs_text else None,
                ))
                position += 1
        return sequences

    def _prompt_ids(self, prompt: PromptRequest) -> list[int]:
        ids = prompt.input_ids if prompt.input_ids is not None else self.tokenizer.encode(prompt.text)
        if not ids:
            raise RequestError(f"request {prompt.rid}: the prompt is empty (no input token)")
        vocab = self.runner.vocab_size
        bad = [t for t in ids if not 0 <= t < vocab]
        if bad:
            raise RequestError(f"request {prompt.rid}: token id(s) {bad[:5]} outside the vocabulary [0, {vocab})")
        return list(ids)

    def _seed(self, prompt: PromptRequest, sample_index: int) -> int:
        """``sampling_seed`` (+ the sample index for ``n > 1``), else the server seed and a request counter."""
        if prompt.params.sampling_seed is not None:
            return (prompt.params.sampling_seed + sample_index) % _SEED_MODULUS
        return (self.random_seed * 1_000_003 + next(self._request_counter)) % _SEED_MODULUS

    async def generate(self, call: GenerateCall) -> list[dict[str, Any]]:
        """Run a non-streaming call; results in request order (prompt-major, then sample index)."""
        self.check_available()
        loop = asyncio.get_running_loop()
        results: dict[int, dict] = {}
        done = asyncio.Event()

        def sink(seq: Sequence, output: dict, final: bool) -> None:
            if final:
                loop.call_soon_threadsafe(_store, seq.index, output)

        def _store(index: int, output: dict) -> None:
            results[index] = output
            if len(results) == len(sequences):
                done.set()

        sequences = self._sequences(call, sink)
        self._submit(sequences)
        try:
            await done.wait()
        except asyncio.CancelledError:  # the client went away: stop spending compute on it
            self._abort_sequences(sequences, "Client disconnected.")
            raise
        return [results[i] for i in range(len(sequences))]

    async def generate_stream(self, call: GenerateCall) -> AsyncIterator[dict[str, Any]]:
        """Yield SGLang's cumulative stream chunks as sequences progress; the last chunk of each sequence
        carries its ``finish_reason``."""
        self.check_available()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def sink(seq: Sequence, output: dict, final: bool) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (output, final))

        sequences = self._sequences(call, sink)
        self._submit(sequences)
        remaining = len(sequences)
        try:
            while remaining:
                output, final = await queue.get()
                remaining -= int(final)
                yield output
        finally:
            if remaining:
                self._abort_sequences(sequences, "Client disconnected.")

    def _submit(self, sequences: list[Sequence]) -> None:
        try:
            self.scheduler.submit(sequences)
        except RuntimeError as exc:  # the scheduler died between check_available and now
            raise EngineUnavailable(str(exc)) from exc

    def _abort_sequences(self, sequences: list[Sequence], message: str) -> None:
        for rid in {s.rid for s in sequences}:
            self.scheduler.abort(rid, message=message)

    def abort(self, rid: str | None = None, abort_all: bool = False) -> int:
        return self.scheduler.abort(rid, abort_all=abort_all)

    # ------------------------------------------------------------------------------------ weights

    async def _in_scheduler(self, fn) -> Any:
        return await asyncio.wrap_future(self.scheduler.call(fn))

    async def update_weights(self, load, *, weight_version: str | None, what: str) -> dict[str, Any]:
        """Run ``load() -> int`` in the scheduler thread; SGLang's ``{"success", "message"}`` answer."""
        def run() -> int:
            count = load()
            if weight_version is not None:
                self.scheduler.weight_version = str(weight_version)
            return count

        try:
            count = await self._in_scheduler(run)
        except Exception as exc:  # any failure is the caller's answer; the old weights stay in place
            logger.warning("weight update from %s failed: %s", what, exc)
            return {"success": False, "message": f"Failed to update weights from {what}: {exc}"}
        message = f"Succeeded to update {count} tensor(s) from {what}."
        if weight_version is not None:
            message += f" Weight version updated to {weight_version}."
        return {"success": True, "message": message}

    async def update_weights_from_disk(self, model_path: str, weight_version: str | None = None) -> dict[str, Any]:
        model = self.runner.model
        return await self.update_weights(lambda: load_named_tensors(model, read_checkpoint(model_path)),
                                         weight_version=weight_version, what=f"disk ({model_path})")

    async def update_weights_from_tensor(self, serialized_named_tensors: list[str], load_format: str | None,
                                         weight_version: str | None = None) -> dict[str, Any]:
        if load_format not in (None, "safetensors"):
            return {"success": False, "message": (
                f"load_format {load_format!r} is SGLang's in-process format; the embedded engine takes "
                "load_format 'safetensors' (base64 safetensors blobs, one bucket per string)")}
        model = self.runner.model
        return await self.update_weights(
            lambda: load_named_tensors(model, decode_safetensors_buckets(serialized_named_tensors)),
            weight_version=weight_version, what="tensor")

    async def init_weights_update_group(self, master_address: str, master_port: int, rank_offset: int,
                                        world_size: int, group_name: str, backend: str) -> dict[str, Any]:
        try:
            await self._in_scheduler(lambda: self.weight_groups.init(
                master_address, master_port, rank_offset, world_size, group_name, backend))
        except Exception as exc:
            return {"success": False, "message": f"Failed to init weight update group {group_name!r}: {exc}"}
        return {"success": True, "message": f"Joined weight update group {group_name!r} as rank {rank_offset}."}

    async def update_weights_from_distributed(self, names: list[str], dtypes: list[str], shapes: list[list[int]],
                                              group_name: str, weight_version: str | None = None) -> dict[str, Any]:
        model, device = self.runner.model, self.runner.device

        def receive_and_load() -> int:
            received = self.weight_groups.receive(group_name, names, dtypes, shapes, device)
            return load_named_tensors(model, received)

        return await self.update_weights(receive_and_load, weight_version=weight_version,
                                         what=f"distributed group {group_name!r}")

    async def destroy_weights_update_group(self, group_name: str) -> dict[str, Any]:
        try:
            await self._in_scheduler(lambda: self.weight_groups.destroy(group_name))
        except Exception as exc:
            return {"success": False, "message": str(exc)}
        return {"success": True, "message": f"Destroyed weight update group {group_name!r}."}

    async def set_weight_version(self, new_version: str, abort_all_requests: bool = False) -> None:
        if abort_all_requests:
            self.abort(abort_all=True)
        self.scheduler.weight_version = str(new_version)

    # ------------------------------------------------------------------------------------ memory

    async def release_memory(self, tags: list[str] | None) -> list[str]:
        def release() -> list[str]:
            load = self.scheduler.load()
            if load["num_running_reqs"] or load["num_waiting_reqs"]:
                raise WeightUpdateError(
                    f"cannot release memory with {load['num_running_reqs']} running and {load['num_waiting_reqs']} "
                    "waiting request(s); pause generation or abort them first")
            return self.memory.release(self.runner.model, self.runner.device, tags)

        return await self._in_scheduler(release)

    async def resume_memory(self, tags: list[str] | None) -> list[str]:
        return await self._in_scheduler(lambda: self.memory.resume(self.runner.model, self.runner.device, tags))
