"""Rollout: data and batching. The prompt data, and the four knobs that size a rollout and a step.

The four-knob invariant ``rollout_batch_size × n_samples_per_prompt = global_batch_size ×
num_steps_per_rollout`` is checked in :mod:`miles_core.config.batch_knobs`.
"""

from __future__ import annotations

import argparse

from miles_core.config.value_types import json_object, positive_int

KNOB_RULE = (
    "Four knobs, one invariant: rollout_batch_size × n_samples_per_prompt = global_batch_size × "
    "num_steps_per_rollout. Pass any three and the fourth is derived; pass all four and they must agree. "
    "With fewer than three passed, --n-samples-per-prompt (then --num-steps-per-rollout) takes its default "
    "of 1, and the last knob is derived. At least one of --rollout-batch-size, --global-batch-size is needed."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Rollout: data and batching", KNOB_RULE)
    group.add_argument("--prompt-data", default=None, metavar="PATH",
                       help="Prompt dataset: one JSONL file (required unless --debug-train-only, "
                            "--load-debug-rollout-data or a custom --data-source).")
    group.add_argument("--input-key", default="prompt", metavar="KEY", help="JSONL key read into Sample.prompt.")
    group.add_argument("--label-key", default="label", metavar="KEY", help="JSONL key read into Sample.label.")
    group.add_argument("--metadata-key", default="metadata", metavar="KEY",
                       help="JSONL key read into Sample.metadata.")
    group.add_argument("--tool-key", default="tools", metavar="KEY",
                       help="JSONL key holding OpenAI tool specs, passed to the chat template.")
    group.add_argument("--apply-chat-template", action="store_true",
                       help="Apply the tokenizer's chat template to each prompt.")
    group.add_argument("--apply-chat-template-kwargs", type=json_object, default=None, metavar="JSON",
                       help="Extra keyword arguments for apply_chat_template, as a JSON object "
                            "(e.g. '{\"enable_thinking\": false}').")
    group.add_argument("--rollout-shuffle", action="store_true", help="Shuffle prompts each epoch (seeded by --rollout-seed).")
    group.add_argument("--rollout-seed", type=int, default=42, help="Seed of prompt shuffling and sampling.")
    group.add_argument("--num-rollout", type=positive_int, default=None, metavar="N",
                       help="Total rollout iterations. Unset: derived from the dataset size × --num-epoch.")
    group.add_argument("--num-epoch", type=positive_int, default=None, metavar="N",
                       help="Passes over the prompt data when --num-rollout is unset (default 1 then).")
    group.add_argument("--rollout-batch-size", type=positive_int, default=None, metavar="N",
                       help="Prompts per rollout. Derived from the other three knobs when unset.")
    group.add_argument("--n-samples-per-prompt", type=positive_int, default=1, metavar="N",
                       help="Responses per prompt (the GRPO group size).")
    group.add_argument("--global-batch-size", type=positive_int, default=None, metavar="N",
                       help="Samples per optimizer step. Derived from the other three knobs when unset.")
    group.add_argument("--num-steps-per-rollout", type=positive_int, default=1, metavar="N",
                       help="Optimizer steps per rollout.")
    group.add_argument("--over-sampling-batch-size", type=positive_int, default=None, metavar="N",
                       help="Prompts submitted at a time when dynamic sampling drops groups (DAPO); must be ≥ "
                            "--rollout-batch-size. Unset: equal to --rollout-batch-size.")
    group.add_argument("--balance-data", action="store_true",
                       help="Balance the token count of each data-parallel rank (Karmarkar-Karp partitioning).")
    group.add_argument("--rollout-max-context-len", type=positive_int, default=None, metavar="TOKENS",
                       help="Max prompt + response tokens. Unset: the engine's context length.")
    group.add_argument("--rollout-max-prompt-len", type=positive_int, default=None, metavar="TOKENS",
                       help="Drop prompts longer than this when loading. Unset: --rollout-max-context-len − 1 "
                            "when that is set, else no limit.")
    group.add_argument("--data-source", default="jsonl", metavar="NAME",
                       help="Data source plugin that feeds prompts (and buffers partial groups).")
    group.add_argument("--data-source-path", default=None, metavar="PKG.MOD:CLASS",
                       help="Miles escape hatch: a data source class cls(args) (get_samples, add_samples, save, "
                            "load); replaces --data-source.")
    group.add_argument("--generate-function", default="single_turn", metavar="NAME",
                       help="Generate-function plugin that turns one prompt into a response.")
    group.add_argument("--custom-generate-function-path", default=None, metavar="PKG.MOD:FN",
                       help="Miles escape hatch: async generate(input) (or the legacy (args, sample, "
                            "sampling_params)) form; replaces --generate-function.")
    group.add_argument("--rollout-function", default="default", metavar="NAME",
                       help="Rollout-function plugin that produces one whole rollout batch.")
    group.add_argument("--rollout-function-path", default=None, metavar="PKG.MOD:CLASS",
                       help="Miles escape hatch: a rollout class cls(RolloutFnConstructorInput) or legacy "
                            "fn(args, rollout_id, data_source, evaluation); replaces --rollout-function.")
