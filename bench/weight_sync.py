"""Seconds per GB of each weight-sync mode that works on CPU: trainer → embedded engine.

A random-init Qwen3 of a few tens of MB (``--hidden-size``/``--layers``, float32) is loaded by an FSDP
trainer (``--world-size`` gloo ranks) and by one embedded engine. Each mode (``tensor``: base64
safetensors buckets over HTTP; ``distributed``: a gloo broadcast group; ``disk``: an HF directory and
``/update_weights_from_disk``) pushes the weights ``--repeats`` times with a new weight version each
time; the table shows the median wall time of a whole sync (pause, gather FSDP shards, transfer, load
into the engine, version check, resume) and the seconds per GB that makes.

    python bench/weight_sync.py                  # ~1 minute on 2 cores
    python bench/weight_sync.py --buffer-mb 16   # more, smaller buckets
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time

MODES = ("tensor", "distributed", "disk")


def make_checkpoint(directory: str, hidden_size: int, layers: int) -> str:
    import torch
    from miles_models_qwen.presets import build_char_tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_char_tokenizer()
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
                         num_attention_heads=hidden_size // 64, num_key_value_heads=max(hidden_size // 128, 1),
                         head_dim=64, intermediate_size=hidden_size * 3, max_position_embeddings=2048,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def trainer(rank: int, world: int, port: int, checkpoint: str, url: str, options: argparse.Namespace,
            run_dir: str, queue) -> None:
    import torch
    from miles_core.training.fsdp.actor import FsdpTrainActor
    from miles_core.training.fsdp.flags import FSDP_FLAG_DEFAULTS
    from miles_core.training.loss import LOSS_FLAG_DEFAULTS

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // (world + 1)))
    args = argparse.Namespace(**{**LOSS_FLAG_DEFAULTS, **FSDP_FLAG_DEFAULTS})
    args.hf_checkpoint, args.attn_implementation, args.run_dir = checkpoint, "sdpa", run_dir
    args.update_weight_buffer_size = options.buffer_mb * 1024 * 1024
    actor = FsdpTrainActor(args, rank, world)
    actor.init(args, rank, world, "127.0.0.1", port)
    version = 0
    results = {}
    for mode in MODES:
        actor.args.update_weight_transfer_mode = mode
        times, gigabytes = [], 0.0
        for _ in range(options.repeats + 1):
            version += 1
            metrics = actor.update_weights([url], str(version))
            times.append(metrics["perf/update_weights_time"])
            gigabytes = metrics["perf/update_weights_gb"]
        results[mode] = (statistics.median(times[1:]), gigabytes)  # the first sync of a mode warms up
    if rank == 0:
        queue.put(results)
    import torch.distributed as dist

    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=384)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--buffer-mb", type=int, default=512, help="--update-weight-buffer-size in MiB (default 512)")
    parser.add_argument("--repeats", type=int, default=3, help="timed syncs per mode after one warm-up")
    parser.add_argument("--world-size", type=int, default=1, help="trainer ranks (gloo)")
    options = parser.parse_args()

    import torch.multiprocessing as mp
    from miles_core.engines.local import start_engine

    with tempfile.TemporaryDirectory(prefix="miles-bench-sync-") as tmp:
        checkpoint = make_checkpoint(os.path.join(tmp, "model"), options.hidden_size, options.layers)
        size_mb = sum(os.path.getsize(os.path.join(checkpoint, f)) for f in os.listdir(checkpoint)
                      if f.endswith(".safetensors")) / 1e6
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        start = time.perf_counter()
        with start_engine(checkpoint, device="cpu", dtype="float32", random_seed=0,
                          log_path=os.path.join(tmp, "engine.log")) as engine:
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            procs = [ctx.Process(target=trainer, args=(r, options.world_size, port, checkpoint, engine.url, options,
                                                       os.path.join(tmp, "run"), queue))
                     for r in range(options.world_size)]
            for proc in procs:
                proc.start()
            try:
                results = queue.get(timeout=1800)
            finally:
                for proc in procs:
                    proc.join(timeout=60)
                    if proc.is_alive():
                        proc.kill()
    print(f"Weight sync trainer → embedded engine (CPU, float32): Qwen3 hidden {options.hidden_size} × "
          f"{options.layers} layers = {size_mb:.1f} MB, buffer {options.buffer_mb} MiB, trainer world size "
          f"{options.world_size}, {os.cpu_count()} cores, {time.perf_counter() - start:.0f}s total")
    print(f"{'mode':<12} {'s / sync':>9} {'GB / sync':>10} {'s / GB':>8}")
    for mode in MODES:
        seconds, gigabytes = results[mode]
        print(f"{mode:<12} {seconds:>9.3f} {gigabytes:>10.4f} {seconds / gigabytes:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
