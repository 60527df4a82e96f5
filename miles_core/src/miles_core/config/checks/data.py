"""Data and model paths, context lengths, and eval settings inherited from the rollout."""

from __future__ import annotations

import argparse
from pathlib import Path

from miles_core.config.errors import ConfigError


def check_model_paths(args: argparse.Namespace, passed: set[str]) -> None:
    if not args.hf_checkpoint:
        raise ConfigError("--hf-checkpoint is required: the HF model directory (config.json, tokenizer, weights) "
                          "that the engines serve and the trainer starts from")
    path = Path(args.hf_checkpoint)
    if not path.is_dir():
        raise ConfigError(f"--hf-checkpoint {args.hf_checkpoint}: no such directory")
    if not (path / "config.json").is_file():
        raise ConfigError(f"--hf-checkpoint {args.hf_checkpoint}: no config.json in this directory "
                          "(expected an HF model directory, as written by save_pretrained)")
    if args.ref_load and not Path(args.ref_load).exists():
        raise ConfigError(f"--ref-load {args.ref_load}: no such file or directory")
    needs_reference = args.use_kl_loss or args.kl_coef != 0
    if needs_reference and args.train_backend == "megatron" and not args.ref_load:
        raise ConfigError("--use-kl-loss / --kl-coef need the reference model: pass --ref-load "
                          "(the megatron backend loads the reference from a torch_dist checkpoint)")


def uses_global_dataset(args: argparse.Namespace) -> bool:
    """True when prompts come from --prompt-data (the built-in jsonl source, generating rollouts)."""
    return not (args.load_debug_rollout_data or args.debug_train_only or args.data_source_path
                or args.data_source != "jsonl")


def check_prompt_data(args: argparse.Namespace, passed: set[str]) -> None:
    if args.prompt_data is None:
        if uses_global_dataset(args):
            raise ConfigError(
                "--prompt-data is required: a JSONL file of prompts (one object per line with the keys --input-key "
                f"'{args.input_key}' and --label-key '{args.label_key}'); not needed with --debug-train-only, "
                "--load-debug-rollout-data, or a custom --data-source / --data-source-path"
            )
        return
    path = Path(args.prompt_data)
    if path.is_dir():
        raise ConfigError(f"--prompt-data {args.prompt_data} is a directory; expected one JSONL file")
    if not path.is_file():
        raise ConfigError(f"--prompt-data {args.prompt_data}: no such file")


def check_eval(args: argparse.Namespace, passed: set[str]) -> None:
    """``--eval-prompt-data NAME PATH [NAME PATH …]``, its cadence, and the sampling it inherits."""
    args.eval_datasets = []
    if args.eval_prompt_data:
        values = args.eval_prompt_data
        if len(values) % 2:
            raise ConfigError(
                f"--eval-prompt-data takes NAME PATH pairs (e.g. 'aime /data/aime.jsonl'); got {len(values)} "
                f"value(s): {' '.join(values)}"
            )
        names = set()
        for name, path in zip(values[0::2], values[1::2], strict=True):
            if name in names:
                raise ConfigError(f"--eval-prompt-data: dataset name {name!r} is given twice")
            names.add(name)
            if not Path(path).is_file():
                raise ConfigError(f"--eval-prompt-data {name} {path}: no such file")
            args.eval_datasets.append([name, path])
    if args.eval_interval is not None and not args.eval_datasets:
        raise ConfigError("--eval-interval needs --eval-prompt-data NAME PATH [NAME PATH ...] (what to evaluate on)")
    for eval_dest, rollout_dest in (("eval_max_response_len", "rollout_max_response_len"),
                                    ("eval_temperature", "rollout_temperature"),
                                    ("eval_top_p", "rollout_top_p"),
                                    ("eval_top_k", "rollout_top_k"),
                                    ("eval_reward_key", "reward_key")):
        if getattr(args, eval_dest) is None:
            setattr(args, eval_dest, getattr(args, rollout_dest))


def check_lengths(args: argparse.Namespace, passed: set[str]) -> None:
    context = args.rollout_max_context_len
    if context is None:
        return
    if args.rollout_max_prompt_len is None:
        args.rollout_max_prompt_len = context - 1
    elif args.rollout_max_prompt_len > context - 1:
        raise ConfigError(f"--rollout-max-prompt-len {args.rollout_max_prompt_len} must be at most "
                          f"--rollout-max-context-len {context} − 1 (a response needs at least one token)")
    if args.rollout_max_response_len is not None and args.rollout_max_response_len >= context:
        raise ConfigError(f"--rollout-max-response-len {args.rollout_max_response_len} leaves no room for a prompt "
                          f"within --rollout-max-context-len {context}")


def check_num_rollout(args: argparse.Namespace, passed: set[str]) -> None:
    if args.num_rollout is not None and args.num_epoch is not None:
        raise ConfigError(f"--num-rollout {args.num_rollout} and --num-epoch {args.num_epoch} both set the run's "
                          "length; pass one (--num-epoch derives --num-rollout from the dataset size)")
