"""Train tokens per second of the FSDP backend with sequence packing on and off, on the same data.

One random-init Qwen3 (``--hidden-size``/``--layers``) is trained with GRPO on a fixed rollout of
``--samples`` samples whose lengths vary uniformly in ``[--min-len, --max-len]`` — what RL rollouts look
like. Two configurations see the same batches:

- **packed**: ``--use-dynamic-batch-size --max-tokens-per-gpu T`` (samples concatenated, no padding);
- **padded**: ``--micro-batch-size B`` (each micro-batch padded to its longest sample);

and the table reports the backend's own ``perf/actor_train_tok_per_s`` (real tokens, padding not
counted) and the forward-only ``perf/log_probs_time``, median over ``--rollouts`` rollouts after one
warm-up rollout (the two configurations alternate rollout by rollout, so a busy machine slows both
alike). Runs on CPU (gloo) or GPU (NCCL), on ``--world-size`` ranks.

    python bench/train_throughput.py                      # CPU, 1 rank, ~1-2 minutes
    python bench/train_throughput.py --world-size 2
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import sys
import tempfile
import time


def make_checkpoint(directory: str, hidden_size: int, layers: int, seed: int) -> str:
    import torch
    from miles_models_qwen.presets import build_char_tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_char_tokenizer()
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
                         num_attention_heads=max(hidden_size // 64, 2), num_key_value_heads=max(hidden_size // 128, 1),
                         head_dim=64 if hidden_size >= 128 else hidden_size // 2, intermediate_size=hidden_size * 3,
                         max_position_embeddings=4096, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_rollout(samples: int, min_len: int, max_len: int, seed: int, vocab: int = 100) -> dict:
    rng = random.Random(seed)
    tokens, response_lengths, rewards = [], [], []
    for _ in range(samples):
        total = rng.randint(min_len, max_len)
        prompt = rng.randint(8, min(64, total // 2))
        tokens.append([rng.randrange(3, vocab) for _ in range(total)])
        response_lengths.append(total - prompt)
        rewards.append(rng.choice([-1.0, 1.0]))
    return {"tokens": tokens, "response_lengths": response_lengths, "rewards": rewards,
            "loss_masks": [[1] * n for n in response_lengths]}


def worker(rank: int, world: int, port: int, options: argparse.Namespace, checkpoint: str, queue) -> None:
    import torch
    from miles_core.training.fsdp.actor import FsdpTrainActor
    from miles_core.training.fsdp.flags import FSDP_FLAG_DEFAULTS
    from miles_core.training.loss import LOSS_FLAG_DEFAULTS

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    rollout = make_rollout(options.samples, options.min_len, options.max_len, options.seed)
    actors = {}
    for name, overrides in (
        ("packed", dict(use_dynamic_batch_size=True, max_tokens_per_gpu=options.max_tokens_per_gpu)),
        ("padded", dict(micro_batch_size=options.micro_batch_size)),
    ):
        args = argparse.Namespace(**{**LOSS_FLAG_DEFAULTS, **FSDP_FLAG_DEFAULTS})
        for key, value in dict(hf_checkpoint=checkpoint, attn_implementation=options.attn_implementation,
                               lr=1e-6, num_rollout=options.rollouts + 1, seed=options.seed, **overrides).items():
            setattr(args, key, value)
        actors[name] = FsdpTrainActor(args, rank, world)
        actors[name].init(args, rank, world, "127.0.0.1", port)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in actors}
    for rollout_id in range(options.rollouts + 1):  # interleaved, so a busy machine slows both alike
        for name, actor in actors.items():
            perf = actor.train(rollout_id, rollout)["perf"]
            if rollout_id:  # the first rollout warms up allocators and kernels
                samples[name].append((perf["perf/actor_train_tok_per_s"], perf["perf/log_probs_time"],
                                      perf["perf/actor_train_time"]))
    results = {name: tuple(statistics.median(column) for column in zip(*rows, strict=True))
               for name, rows in samples.items()}
    if rank == 0:
        queue.put(results)
    import torch.distributed as dist

    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--samples", type=int, default=32, help="samples per rollout (default 32)")
    parser.add_argument("--min-len", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--max-tokens-per-gpu", type=int, default=2048, help="packed micro-batch budget")
    parser.add_argument("--micro-batch-size", type=int, default=4, help="padded micro-batch size")
    parser.add_argument("--rollouts", type=int, default=3, help="timed rollouts after one warm-up (default 3)")
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--attn-implementation", default="sdpa")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="miles-bench-") as tmp:
        checkpoint = make_checkpoint(os.path.join(tmp, "model"), options.hidden_size, options.layers, options.seed)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        start = time.perf_counter()
        procs = [ctx.Process(target=worker, args=(r, options.world_size, port, options, checkpoint, queue))
                 for r in range(options.world_size)]
        for proc in procs:
            proc.start()
        try:
            results = queue.get(timeout=3600)
        finally:
            for proc in procs:
                proc.join(timeout=60)
                if proc.is_alive():
                    proc.kill()
    rollout = make_rollout(options.samples, options.min_len, options.max_len, options.seed)
    real = sum(len(t) for t in rollout["tokens"])
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print(f"FSDP train throughput — Qwen3 hidden {options.hidden_size} × {options.layers} layers, {options.samples} "
          f"samples/rollout of {options.min_len}-{options.max_len} tokens ({real} real tokens), "
          f"world size {options.world_size}, {device}, {time.perf_counter() - start:.0f}s total")
    print(f"{'batching':<34} {'train tok/s':>12} {'train s':>9} {'log-probs s':>12}")
    labels = {"packed": f"packed (max {options.max_tokens_per_gpu} tok/mb)",
              "padded": f"padded (micro-batch {options.micro_batch_size})"}
    for name in ("packed", "padded"):
        tok_s, log_probs_s, train_s = results[name]
        print(f"{labels[name]:<34} {tok_s:>12.0f} {train_s:>9.2f} {log_probs_s:>12.2f}")
    speedup = results["packed"][0] / results["padded"][0]
    print(f"packing speed-up: {speedup:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
