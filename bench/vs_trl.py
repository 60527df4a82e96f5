"""Miles vs TRL's GRPOTrainer on the same tiny model, prompts, reward and batch shape, on this machine.

Both runs start from the same random-init tiny Qwen3 (same seed, same local tokenizer), train with GRPO
(group-normalised rewards, no KL, one optimizer step per batch of 16 prompts × 8 samples, responses of
at most 4 tokens, same learning rate) on the "Say 7:" task, with the same reward function, for the
same number of steps, one after the other. Printed: seconds per step (median), samples per second,
and the mean raw reward over the first and the last five steps.

    python bench/vs_trl.py [--steps 60]

What differs by design: Miles runs the full distributed loop (Ray actors, an HTTP engine behind the
router, FSDP, a weight sync after every step); TRL generates with ``model.generate`` inside its own
process. That overhead is part of what this table measures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS_PER_STEP = 16
SAMPLES_PER_PROMPT = 8
MAX_RESPONSE_LEN = 4
LEARNING_RATE = 1.5e-3
SEED = 0


def prepare(workdir: Path) -> tuple[Path, Path]:
    from miles_models_qwen.presets import create_checkpoint
    from miles_say_digit.task import write_dataset

    model = create_checkpoint("qwen3", "tiny", workdir / "model", seed=SEED)
    data = write_dataset(workdir / "prompts.jsonl", count=2000, seed=SEED)
    return model, data


def run_miles(model: Path, data: Path, steps: int, run_dir: Path) -> dict:
    command = [
        sys.executable, "-m", "miles_core.cli.main", "train",
        "--hf-checkpoint", str(model), "--prompt-data", str(data), "--input-key", "prompt", "--label-key", "label",
        "--rm-type", "say_digit", "--advantage-estimator", "grpo", "--train-backend", "fsdp",
        "--rollout-batch-size", str(PROMPTS_PER_STEP), "--n-samples-per-prompt", str(SAMPLES_PER_PROMPT),
        "--global-batch-size", str(PROMPTS_PER_STEP * SAMPLES_PER_PROMPT), "--num-rollout", str(steps),
        "--rollout-max-response-len", str(MAX_RESPONSE_LEN), "--rollout-temperature", "1.0",
        "--lr", str(LEARNING_RATE), "--weight-decay", "0", "--adam-beta2", "0.98", "--clip-grad", "1.0",
        "--actor-num-nodes", "1", "--actor-num-gpus-per-node", "1", "--rollout-num-gpus", "1",
        "--attn-implementation", "sdpa", "--seed", str(SEED), "--run-dir", str(run_dir),
        # one packed micro-batch per step, as TRL computes the whole batch at once
        "--use-dynamic-batch-size", "--max-tokens-per-gpu", "8192",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL if not os.environ.get("VERBOSE") else None)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "rollout/raw_reward" in r]
    step_times = [r["perf/step_time"] for r in rows]
    return {"rewards": [r["rollout/raw_reward"] for r in rows], "step_times": step_times, "wall": wall}


def run_trl(model_dir: Path, data: Path, steps: int, out_dir: Path) -> dict:
    import torch
    from datasets import load_dataset
    from miles_say_digit.task import score
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    dataset = load_dataset("json", data_files=str(data), split="train")

    def say_digit(prompts, completions, label, **kwargs):
        return [score(text, str(digit), MAX_RESPONSE_LEN) for text, digit in zip(completions, label, strict=True)]

    step_times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            step_times.append(time.perf_counter() - self.start)

    config = GRPOConfig(
        output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=PROMPTS_PER_STEP * SAMPLES_PER_PROMPT,
        num_generations=SAMPLES_PER_PROMPT, max_completion_length=MAX_RESPONSE_LEN, learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, adam_beta2=0.98, max_grad_norm=1.0,
        beta=0.0, loss_type="grpo", scale_rewards="group", temperature=1.0, logging_steps=1, report_to="none",
        bf16=False, use_cpu=True, use_vllm=False, save_strategy="no", disable_tqdm=True, seed=SEED,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=[say_digit], args=config,
                          train_dataset=dataset, callbacks=[StepTimer()])
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # TRL prints every log row; the table below is the summary
        trainer.train()
    wall = time.perf_counter() - start
    rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    return {"rewards": rewards, "step_times": step_times, "wall": wall}


def summarise(name: str, result: dict) -> list[str]:
    samples_per_step = PROMPTS_PER_STEP * SAMPLES_PER_PROMPT
    median = statistics.median(result["step_times"])
    first = statistics.mean(result["rewards"][:5])
    last = statistics.mean(result["rewards"][-5:])
    return [name, f"{len(result['rewards'])}", f"{median:.2f}", f"{samples_per_step / median:.0f}",
            f"{first:.3f}", f"{last:.3f}", f"{result['wall']:.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--only", choices=["miles", "trl"], default=None)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="miles-vs-trl-") as tmp:
        workdir = Path(tmp)
        model, data = prepare(workdir)
        results = {}
        if options.only in (None, "miles"):
            results["miles (Ray + engine + FSDP)"] = run_miles(model, data, options.steps, workdir / "miles-run")
        if options.only in (None, "trl"):
            results["TRL GRPOTrainer"] = run_trl(model, data, options.steps, workdir / "trl-run")
    header = ["framework", "steps", "s/step (median)", "samples/s", "reward first 5", "reward last 5", "wall s"]
    rows = [header] + [summarise(name, result) for name, result in results.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(f"\n{PROMPTS_PER_STEP} prompts × {SAMPLES_PER_PROMPT} samples per step, ≤{MAX_RESPONSE_LEN} tokens, "
          f"lr {LEARNING_RATE}, tiny Qwen3 (random init), CPU ({os.cpu_count()} cores)")
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * width for width in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
