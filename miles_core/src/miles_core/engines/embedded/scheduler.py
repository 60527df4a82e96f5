"""Continuous batching: one thread that owns the model and decodes every running sequence as one batch.

Between two decode steps the loop (1) runs queued commands (weight updates, memory release: they never
race a forward pass), (2) finishes aborted sequences, (3) admits waiting sequences — prefilled together,
their first token sampled, then joined to the running batch's KV cache — and (4) decodes one token for
every running row with per-row sampling parameters, seeds and stop rules. Finished rows leave the batch
at once and their results go back to the HTTP side through each sequence's ``sink``.

``pause`` stops stepping (new requests wait); SGLang's pause modes are honoured: ``abort`` aborts
everything, ``retract`` moves running rows back to the waiting queue and drops their KV cache (they are
re-prefilled with their tokens so far on ``continue``, so the rest of the response uses the new weights),
``in_place`` keeps rows and cache as they are.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from miles_core.engines.embedded.kv_batch import KVBatch, supports_joining
from miles_core.engines.embedded.model_runner import ModelRunner
from miles_core.engines.embedded.sampling import (
    BatchSampling,
    apply_penalties,
    draw_uniforms,
    sample_tokens,
    tempered_log_probs,
)
from miles_core.engines.embedded.sequence import Sequence

logger = logging.getLogger(__name__)

PAUSE_MODES = ("abort", "retract", "in_place")


@dataclass
class SchedulerStats:
    """Counters shown by ``/get_server_info`` and ``/get_load``."""

    requests_finished: int = 0
    tokens_generated: int = 0
    prompt_tokens: int = 0
    decode_steps: int = 0
    prefill_batches: int = 0
    max_running: int = 0


class Scheduler:
    """The batching loop and the thread-safe calls the HTTP side makes into it."""

    def __init__(self, runner: ModelRunner, *, max_batch_size: int = 64, max_prefill_tokens: int = 16384) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.runner = runner
        self.max_batch_size = max_batch_size
        self.max_prefill_tokens = max_prefill_tokens
        self.weight_version = "0"
        self.stats = SchedulerStats()
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._waiting: deque[Sequence] = deque()
        self._by_rid: dict[str, list[Sequence]] = {}
        self._commands: deque[tuple[Callable[[], Any], concurrent.futures.Future]] = deque()
        self._abort_pending = False
        self._paused = False
        self._stopped = False
        # Owned by the scheduler thread only.
        self._running: list[Sequence] = []
        self._kv: KVBatch | None = None
        self._sampling: BatchSampling | None = None
        self._stop_ids = runner.eos_token_ids
        self._joinable = True
        self._thread = threading.Thread(target=self._loop, name="miles-embedded-scheduler", daemon=True)

    # ------------------------------------------------------------------------ calls from other threads

    def start(self) -> None:
        """Warm the model up, learn whether its cache supports continuous batching, start the loop."""
        warmup = self.runner.prefill([[0, 0]])
        self._joinable = supports_joining(warmup.kv.cache)
        if not self._joinable:
            logger.warning("this model's KV cache cannot be joined across requests (sliding-window or "
                           "non-standard attention): falling back to static batching")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    @property
    def paused(self) -> bool:
        return self._paused

    def submit(self, sequences: list[Sequence]) -> None:
        """Queue sequences for generation (they are admitted at the next step)."""
        if not self.alive:
            raise RuntimeError(f"the embedded engine's scheduler is not running ({self.error!r})")
        with self._cond:
            for seq in sequences:
                seq.stop_token_ids = self._stop_ids | frozenset(seq.params.stop_token_ids)
                self._waiting.append(seq)
                self._by_rid.setdefault(seq.rid, []).append(seq)
                if seq.seq_id != seq.rid:
                    self._by_rid.setdefault(seq.seq_id, []).append(seq)
            self._cond.notify_all()

    def abort(self, rid: str | None = None, *, abort_all: bool = False, message: str = "Aborted by request.") -> int:
        """Mark matching sequences aborted (by rid or sequence id, or all); return how many matched."""
        with self._cond:
            if abort_all:
                targets = {id(s): s for seqs in self._by_rid.values() for s in seqs}.values()
            else:
                targets = list(self._by_rid.get(str(rid), []))
            count = 0
            for seq in targets:
                if seq.abort_message is None and not seq.finished:
                    seq.abort_message = message
                    count += 1
            if count:
                self._abort_pending = True
                self._cond.notify_all()
            return count

    def call(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run ``fn()`` in the scheduler thread between two steps; the future holds its result."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        if not self.alive:
            future.set_exception(RuntimeError(f"the embedded engine's scheduler is not running ({self.error!r})"))
            return future
        with self._cond:
            self._commands.append((fn, future))
            self._cond.notify_all()
        return future

    def pause(self, mode: str = "retract") -> concurrent.futures.Future:
        """Stop generating (SGLang's ``/pause_generation``); see the module docstring for ``mode``."""
        if mode not in PAUSE_MODES:
            raise ValueError(f"pause mode must be one of {', '.join(PAUSE_MODES)}, got {mode!r}")
        if mode == "abort":
            self.abort(abort_all=True, message="Aborted by pause_generation(mode='abort').")

        def do_pause() -> None:
            self._paused = True
            if mode == "retract":
                self._retract_all()

        return self.call(do_pause)

    def resume(self) -> concurrent.futures.Future:
        def do_resume() -> None:
            self._paused = False

        return self.call(do_resume)

    def load(self) -> dict[str, int]:
        with self._cond:
            waiting = len(self._waiting)
        running = [s for s in list(self._running) if not s.finished]
        return {"num_running_reqs": len(running), "num_waiting_reqs": waiting,
                "num_tokens": sum(len(s.prompt_ids) + len(s.output_ids) for s in running)}

    # ---------------------------------------------------------------------------------- the loop

    def _has_work(self) -> bool:
        return (self._stopped or bool(self._commands) or self._abort_pending
                or (not self._paused and bool(self._waiting or self._running)))

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._has_work():
                        self._cond.wait()
                    if self._stopped:
                        break
                    commands = list(self._commands)
                    self._commands.clear()
                for fn, future in commands:
                    self._run_command(fn, future)
                self._finish_aborted()
                if self._paused:
                    continue
                self._admit()
                if self._running:
                    self._decode_step()
        except BaseException as exc:  # the engine is broken: say so to every waiting client
            logger.exception("embedded engine scheduler crashed")
            self.error = exc
            self._fail_everything(f"engine error: {type(exc).__name__}: {exc}")
        finally:
            self._fail_everything("engine is shutting down")

    @staticmethod
    def _run_command(fn: Callable[[], Any], future: concurrent.futures.Future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    # ---------------------------------------------------------------------------------- admission

    def _take_waiting(self) -> list[Sequence]:
        """Waiting sequences that fit in the batch and in the prefill token budget."""
        taken: list[Sequence] = []
        with self._cond:
            if self._running and not self._joinable:
                return taken  # static batching: wait for the batch to drain
            capacity = self.max_batch_size - len(self._running)
            longest = 0
            while self._waiting and len(taken) < capacity:
                seq = self._waiting[0]
                longest_if_taken = max(longest, len(seq.context_ids))
                if taken and longest_if_taken * (len(taken) + 1) > self.max_prefill_tokens:
                    break
                longest = longest_if_taken
                taken.append(self._waiting.popleft())
        return taken

    def _admit(self) -> None:
        taken = self._take_waiting()
        if not taken:
            return
        scoring = [s for s in taken if _needs_prompt_logprobs(s)]
        plain = [s for s in taken if not _needs_prompt_logprobs(s)]
        groups = ([plain] if plain else []) + [[s] for s in scoring]
        if not self._joinable and len(groups) > 1:  # one group at a time; the rest waits its turn
            with self._cond:
                self._waiting.extendleft(reversed([s for g in groups[1:] for s in g]))
            groups = groups[:1]
        for group in groups:
            self._prefill_group(group)

    def _prefill_group(self, group: list[Sequence]) -> None:
        keep_last = 1
        scoring = len(group) == 1 and _needs_prompt_logprobs(group[0])
        if scoring:
            seq = group[0]
            keep_last = len(seq.prompt_ids) - seq.logprob_start_len
        output = self.runner.prefill([s.context_ids for s in group], keep_last=keep_last)
        self.stats.prefill_batches += 1
        self.stats.prompt_tokens += sum(len(s.prompt_ids) for s in group)
        if scoring:
            _record_prompt_logprobs(group[0], output.all_logits[0])
        live = [i for i, s in enumerate(group) if s.max_new_tokens > len(s.output_ids)]
        for i, seq in enumerate(group):
            if i not in live:  # max_new_tokens == 0: scoring only
                seq.finish_reason = {"type": "length", "length": len(seq.output_ids)}
                self._deliver(seq)
        if not live:
            return
        seqs = [group[i] for i in live]
        logits = output.last_logits[live] if len(live) < len(group) else output.last_logits
        self._sample_and_append(seqs, logits, BatchSampling.from_params(
            [s.params for s in seqs], self.runner.vocab_size, logits.device))
        kv = output.kv
        still = [i for i, seq in zip(live, seqs, strict=True) if not seq.finished]
        if still != list(range(len(group))):
            if not still:
                return
            kv.keep_rows(still)
        joining = [group[i] for i in still]
        if self._kv is None:
            self._kv = kv
        else:
            self._kv.join(kv)
        self._running.extend(joining)
        self._sampling = None
        self.stats.max_running = max(self.stats.max_running, len(self._running))

    # ---------------------------------------------------------------------------------- decoding

    def _decode_step(self) -> None:
        tokens = torch.tensor([s.output_ids[-1] for s in self._running], dtype=torch.long)
        logits = self.runner.decode(self._kv, tokens)
        self.stats.decode_steps += 1
        if self._sampling is None:
            self._sampling = BatchSampling.from_params(
                [s.params for s in self._running], self.runner.vocab_size, logits.device)
        self._sample_and_append(self._running, logits, self._sampling)
        self._drop_finished()

    def _sample_and_append(self, seqs: list[Sequence], logits: torch.Tensor, sampling: BatchSampling) -> None:
        """Sample one token per row, record it with its log-prob, deliver finished rows and stream chunks."""
        reported = tempered_log_probs(logits, sampling.temperature)
        work = logits
        if any(s.params.has_penalties for s in seqs):
            work = apply_penalties(logits.clone(), [s.params for s in seqs],
                                   [s.prompt_ids for s in seqs], [s.output_ids for s in seqs])
        work = work / sampling.temperature.unsqueeze(-1)
        _ban_stop_tokens_before_min_new_tokens(work, seqs)
        uniforms = draw_uniforms([None if s.params.greedy else s.generator for s in seqs])
        tokens = sample_tokens(work, sampling, uniforms)
        chosen = reported.gather(1, tokens.unsqueeze(1)).squeeze(1)
        top_wanted = max((s.top_logprobs_num for s in seqs), default=0)
        top_values = top_indices = None
        if top_wanted:
            top_values, top_indices = reported.topk(min(top_wanted, reported.shape[-1]), dim=-1)
            top_values, top_indices = top_values.tolist(), top_indices.tolist()
        for row, (seq, token, logprob) in enumerate(zip(seqs, tokens.tolist(), chosen.tolist(), strict=True)):
            top = None
            if seq.top_logprobs_num:
                k = seq.top_logprobs_num
                top = list(zip(top_values[row][:k], top_indices[row][:k], strict=True))
            seq.append(token, logprob, top)
            self.stats.tokens_generated += 1
            if seq.finished:
                self._deliver(seq)
            elif seq.stream:
                seq.sink(seq, seq.output(self.runner.scheduler_tokenizer, self.weight_version, final=False), False)

    def _drop_finished(self) -> None:
        keep = [i for i, s in enumerate(self._running) if not s.finished]
        if len(keep) == len(self._running):
            return
        self._running = [self._running[i] for i in keep]
        self._sampling = None
        if keep:
            self._kv.keep_rows(keep)
        else:
            self._kv = None

    # ---------------------------------------------------------------------------------- aborts, results

    def _finish_aborted(self) -> None:
        with self._cond:
            if not self._abort_pending:
                return
            self._abort_pending = False
            aborted_waiting = [s for s in self._waiting if s.abort_message is not None]
            for seq in aborted_waiting:
                self._waiting.remove(seq)
        for seq in aborted_waiting:
            seq.abort(seq.abort_message)
            self._deliver(seq)
        for seq in self._running:
            if seq.abort_message is not None and not seq.finished:
                seq.abort(seq.abort_message)
                self._deliver(seq)
        self._drop_finished()

    def _retract_all(self) -> None:
        """Send running rows back to the front of the queue and free their cache."""
        if not self._running:
            return
        with self._cond:
            self._waiting.extendleft(reversed(self._running))
        self._running = []
        self._kv = None
        self._sampling = None

    def _deliver(self, seq: Sequence) -> None:
        """Send a finished sequence's result and forget it."""
        with self._cond:
            for key in {seq.rid, seq.seq_id}:
                seqs = self._by_rid.get(key)
                if seqs is not None:
                    if seq in seqs:
                        seqs.remove(seq)
                    if not seqs:
                        del self._by_rid[key]
        self.stats.requests_finished += 1
        try:
            seq.sink(seq, seq.output(self.runner.scheduler_tokenizer, self.weight_version, final=True), True)
        except Exception:  # a broken sink must not stop the engine
            logger.exception("delivering the result of %s failed", seq.seq_id)

    def _fail_everything(self, message: str) -> None:
        """Abort every sequence not yet delivered (waiting, running, or caught mid-admission)."""
        with self._cond:
            pending = list({id(s): s for seqs in self._by_rid.values() for s in seqs}.values())
            self._waiting.clear()
            commands = list(self._commands)
            self._commands.clear()
        self._running = []
        self._kv = None
        for seq in pending:
            if not seq.finished:
                seq.abort(message)
            self._deliver(seq)
        for _, future in commands:
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError(message))


def _ban_stop_tokens_before_min_new_tokens(logits: torch.Tensor, seqs: list[Sequence]) -> None:
    """EOS and stop tokens get ``-inf`` in rows that have not reached ``min_new_tokens`` (one indexed
    write for the whole batch: a write per row costs a kernel launch per row on a GPU)."""
    vocab = logits.shape[-1]
    pairs = [(row, token) for row, seq in enumerate(seqs)
             if len(seq.output_ids) < seq.params.min_new_tokens and not seq.params.ignore_eos
             for token in seq.stop_token_ids if token < vocab]
    if pairs:
        index = torch.tensor(pairs, dtype=torch.long).to(logits.device, non_blocking=True)
        logits[index[:, 0], index[:, 1]] = float("-inf")


def _needs_prompt_logprobs(seq: Sequence) -> bool:
    return (seq.return_logprob and seq.input_logprobs is None
            and 0 <= seq.logprob_start_len < len(seq.prompt_ids))


def _record_prompt_logprobs(seq: Sequence, logits: torch.Tensor) -> None:
    """SGLang's ``input_token_logprobs`` for ``prompt_ids[start:]``: entry 0 is ``None`` (SGLang's
    convention) and entry ``i`` is ``log P(prompt[start+i] | prompt[:start+i])``, at the request's
    temperature. ``logits`` holds positions ``start .. len(prompt)-1``."""
    start = seq.logprob_start_len
    targets = torch.tensor(seq.prompt_ids[start + 1:], dtype=torch.long, device=logits.device)
    temperature = torch.tensor([1.0 if seq.params.greedy else seq.params.temperature], device=logits.device)
    log_probs = tempered_log_probs(logits[:-1], temperature.expand(logits.shape[0] - 1))
    values = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1).tolist() if len(targets) else []
    seq.input_logprobs = [None] + values
    if seq.top_logprobs_num:
        top_values, top_indices = log_probs.topk(min(seq.top_logprobs_num, log_probs.shape[-1]), dim=-1)
        seq.input_top_logprobs = [None] + [list(zip(v, i, strict=True)) for v, i in zip(top_values.tolist(), top_indices.tolist(), strict=True)]
    else:
        seq.input_top_logprobs = None
