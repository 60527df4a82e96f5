"""Model and checkpoints: what is trained, where it is loaded from and saved to, and the train backend."""

from __future__ import annotations

import argparse

from miles_core.config.value_types import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Model and checkpoints")
    group.add_argument(
        "--train-backend", default="fsdp", metavar="NAME",
        help="Training backend plugin: 'fsdp' or 'megatron' (or any name a plugin registers; see 'miles plugins'). "
             "Deviation from Miles's reference (default megatron): the default here is fsdp, because the "
             "megatron backend does not exist yet.",
    )
    group.add_argument("--hf-checkpoint", default=None, metavar="PATH",
                       help="HF model directory (config.json, tokenizer, weights): the tokenizer, the config, the "
                            "weights the fsdp backend and the rollout engines load. Required.")
    group.add_argument("--ref-load", default=None, metavar="PATH",
                       help="Reference model checkpoint (Megatron torch_dist format). The fsdp backend uses "
                            "--hf-checkpoint as the reference when unset.")
    group.add_argument("--load", default=None, metavar="PATH",
                       help="Actor checkpoint directory to resume from (written by --save).")
    group.add_argument("--save", default=None, metavar="PATH", help="Actor checkpoint write directory.")
    group.add_argument("--save-interval", type=positive_int, default=None, metavar="N",
                       help="Rollouts between saves (needs --save). Unset: save only after the last rollout.")
    group.add_argument("--model-name", default=None,
                       help="Model name (set it in multi-node runs to avoid a transformers file-system race).")
    group.add_argument(
        "--spec", nargs=2, default=None, metavar=("MODULE", "FN"),
        help="Model spec for a custom architecture, as Miles: FN(args, config, vp_stage) -> ModuleSpec in MODULE "
             "(e.g. 'my_models.qwen3_5 get_qwen3_5_spec'). Registered as an ad-hoc model spec.",
    )
    group.add_argument(
        "--model-spec", default=None, metavar="NAME",
        help="Model spec plugin (e.g. qwen3 from miles-models-qwen). Unset: the spec whose architectures match "
             "the checkpoint's config.json.",
    )
    group.add_argument("--transformer-impl", choices=("local", "transformer_engine"), default=None,
                       help="Megatron layer implementation. Unset: transformer_engine when it is importable, "
                            "else megatron-core's local modules (which also run on CPU).")
    group.add_argument("--ckpt-step", type=non_negative_int, default=None, metavar="ROLLOUT_ID",
                       help="With --load: load this saved rollout instead of the latest.")
    group.add_argument("--no-load-optim", action="store_true", help="With --load: do not restore the optimizer state.")
    group.add_argument("--no-load-rng", action="store_true", help="With --load: do not restore the RNG state.")
    group.add_argument("--save-hf", default=None, metavar="PATH",
                       help="Also export an HF checkpoint at each save; may hold '{rollout_id}'.")
    group.add_argument("--seed", type=int, default=1234, help="Random seed of the trainer.")
    group.add_argument("--ref-update-interval", type=positive_int, default=None, metavar="N",
                       help="Copy the actor into the reference model every N rollouts. Unset: the reference is frozen.")
    group.add_argument("--start-rollout-id", type=non_negative_int, default=None, metavar="ID",
                       help="First rollout id. Unset: 0, or the rollout after the one loaded with --load.")
