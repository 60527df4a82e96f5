"""Tokens per second of the embedded engine against plain ``model.generate`` on the same model.

For each batch size B, the engine (a separate process, reached over HTTP on loopback) receives B
concurrent ``/generate`` requests, each forced to exactly N new tokens (``min_new_tokens = max_new_tokens``,
sampling at temperature 1 with log-probs returned, as a rollout does); tokens/s is B·N over the wall
time of the whole burst, HTTP and JSON included. The baseline is one ``model.generate`` call in this
process on the same B prompts (left-padded, ``do_sample=True``, ``min_new_tokens = max_new_tokens = N``,
dynamic KV cache), i.e. static batching with no server around it. Each measurement is preceded by one
warm-up and is the best of ``--repeats`` runs. The two never run at the same time.

Run: ``python bench/rollout_engine.py [--hf-checkpoint DIR] [--batch-sizes 1 8 32 64] [--new-tokens 64]``
(without ``--hf-checkpoint``, a random-init Qwen3 of preset ``--preset`` is created in a temp dir).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import torch
from miles_core.engines.local import start_engine

PROMPT_TEMPLATES = ["Question {i}: what is {i} plus {i}?", "Write a haiku about the number {i}.",
                    "Translate to French: good morning number {i}", "Summarize: the {i}th day was sunny."]


def prompts(count: int) -> list[str]:
    return [PROMPT_TEMPLATES[i % len(PROMPT_TEMPLATES)].format(i=i) for i in range(count)]


async def engine_burst(url: str, texts: list[str], new_tokens: int) -> float:
    """Seconds to serve ``len(texts)`` concurrent requests of ``new_tokens`` tokens each."""
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=None)) as client:
        async def one(text: str) -> int:
            response = await client.post("/generate", json={
                "text": text, "return_logprob": True,
                "sampling_params": {"temperature": 1.0, "max_new_tokens": new_tokens, "min_new_tokens": new_tokens}})
            response.raise_for_status()
            return response.json()["meta_info"]["completion_tokens"]

        start = time.perf_counter()
        counts = await asyncio.gather(*(one(t) for t in texts))
        elapsed = time.perf_counter() - start
    assert all(c == new_tokens for c in counts), counts
    return elapsed


def hf_generate(model, tokenizer, texts: list[str], new_tokens: int, device: torch.device) -> float:
    batch = tokenizer(texts, return_tensors="pt", padding=True).to(device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tokenizer.pad_token_id)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    assert out.shape[1] - batch["input_ids"].shape[1] == new_tokens
    return elapsed


def best_of(repeats: int, measure) -> float:
    measure()  # warm-up
    return min(measure() for _ in range(repeats))


def run(args: argparse.Namespace, checkpoint: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = torch.device(args.device)
    texts = prompts(max(args.batch_sizes))

    engine_tps: dict[int, float] = {}
    with start_engine(checkpoint, device=args.device, dtype=args.dtype, random_seed=0,
                      max_batch_size=max(args.batch_sizes)) as engine:
        for size in args.batch_sizes:
            batch = texts[:size]
            seconds = best_of(args.repeats, lambda batch=batch: asyncio.run(
                engine_burst(engine.url, batch, args.new_tokens)))
            engine_tps[size] = size * args.new_tokens / seconds

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, padding_side="left")
    dtype = torch.float32 if args.dtype in ("auto", "float32") and device.type == "cpu" else (
        torch.bfloat16 if args.dtype in ("auto", "bfloat16") else torch.float16)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype).to(device).eval()
    hf_tps = {size: size * args.new_tokens / best_of(args.repeats, lambda batch=texts[:size]: hf_generate(
        model, tokenizer, batch, args.new_tokens, device)) for size in args.batch_sizes}

    params = sum(p.numel() for p in model.parameters())
    print(f"\nmodel: {checkpoint} ({params / 1e6:.2f}M parameters), device {device}, {args.new_tokens} new tokens "
          f"per request, torch threads {torch.get_num_threads()}")
    print(f"{'concurrent requests':>20} | {'embedded engine tok/s':>22} | {'model.generate tok/s':>21} | {'ratio':>6}")
    print("-" * 80)
    for size in args.batch_sizes:
        print(f"{size:>20} | {engine_tps[size]:>22,.0f} | {hf_tps[size]:>21,.0f} | {engine_tps[size] / hf_tps[size]:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf-checkpoint", default=None)
    parser.add_argument("--preset", default="tiny", help="miles-models-qwen preset when no checkpoint is given.")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="miles-bench-") as scratch:
        checkpoint = args.hf_checkpoint
        if checkpoint is None:
            from miles_models_qwen.presets import create_checkpoint

            checkpoint = str(create_checkpoint("qwen3", args.preset, Path(scratch) / "model", seed=0))
        run(args, checkpoint)


if __name__ == "__main__":
    main()
