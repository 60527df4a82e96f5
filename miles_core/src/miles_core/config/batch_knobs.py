"""The four-knob invariant: every sample a rollout produces is trained on exactly once.

    rollout_batch_size × n_samples_per_prompt = global_batch_size × num_steps_per_rollout
    (prompts/rollout)    (responses/prompt)     (samples/step)      (steps/rollout)

Rule (documented in ``miles train --help`` and the README):

1. The knobs you pass come first. Pass all four and they must agree; pass three and the fourth is derived.
2. With fewer than three passed, ``--n-samples-per-prompt`` and then ``--num-steps-per-rollout`` take their
   default (1) until three are known, and the last one is derived. So ``--rollout-batch-size 32
   --n-samples-per-prompt 8`` trains the 256 samples in one step (global batch 256), and
   ``--rollout-batch-size 32 --n-samples-per-prompt 8 --global-batch-size 64`` in 4 steps, as Miles does.
3. At least one of ``--rollout-batch-size`` and ``--global-batch-size`` is needed.

A derived knob must be a positive whole number; otherwise the error shows the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from miles_core.config.errors import ConfigError

__all__ = ["KNOBS", "KnobResolution", "resolve_batch_knobs", "apply_batch_knobs"]

KNOBS = ("rollout_batch_size", "n_samples_per_prompt", "global_batch_size", "num_steps_per_rollout")
DEFAULTS = {"n_samples_per_prompt": 1, "num_steps_per_rollout": 1}
ROLLOUT_SIDE = ("rollout_batch_size", "n_samples_per_prompt")
TRAIN_SIDE = ("global_batch_size", "num_steps_per_rollout")


def flag(knob: str) -> str:
    return "--" + knob.replace("_", "-")


@dataclass
class KnobResolution:
    """The four values, and how each was obtained (``"passed"``, ``"default"`` or ``"derived"``)."""

    values: dict[str, int]
    source: dict[str, str] = field(default_factory=dict)

    @property
    def derived(self) -> str | None:
        return next((k for k, s in self.source.items() if s == "derived"), None)

    @property
    def samples_per_rollout(self) -> int:
        return self.values["rollout_batch_size"] * self.values["n_samples_per_prompt"]


def resolve_batch_knobs(values: dict[str, int | None], passed: set[str]) -> KnobResolution:
    """Fill or check the four knobs. ``values`` holds the parsed values, ``passed`` the knobs the user gave."""
    known: dict[str, int] = {k: int(values[k]) for k in KNOBS if k in passed and values.get(k) is not None}
    source = {k: "passed" for k in known}
    for knob in ("n_samples_per_prompt", "num_steps_per_rollout"):
        if len(known) >= 3:
            break
        if knob not in known:
            known[knob] = DEFAULTS[knob]
            source[knob] = "default"
    if len(known) < 3:
        raise ConfigError(
            "batch size missing: pass --rollout-batch-size (prompts per rollout) or --global-batch-size "
            "(samples per optimizer step). " + _rule()
        )

    def term(knob: str) -> str:
        return f"{flag(knob)} {known[knob]}" + (" (default)" if source.get(knob) == "default" else "")

    if len(known) == 4:
        produced = known["rollout_batch_size"] * known["n_samples_per_prompt"]
        trained = known["global_batch_size"] * known["num_steps_per_rollout"]
        if produced != trained:
            raise ConfigError(
                f"{term('rollout_batch_size')} × {term('n_samples_per_prompt')} = {produced} samples per rollout, "
                f"but {term('global_batch_size')} × {term('num_steps_per_rollout')} = {trained} samples trained "
                f"per rollout. Change one of them so both sides agree, or leave one out and Miles derives it."
            )
        return KnobResolution(known, source)

    missing = next(k for k in KNOBS if k not in known)
    side, other_side = (ROLLOUT_SIDE, TRAIN_SIDE) if missing in ROLLOUT_SIDE else (TRAIN_SIDE, ROLLOUT_SIDE)
    partner = next(k for k in side if k != missing)
    total = known[other_side[0]] * known[other_side[1]]
    unit = "samples per rollout" if other_side == ROLLOUT_SIDE else "samples trained per rollout"
    if total % known[partner]:
        raise ConfigError(
            f"{term(other_side[0])} × {term(other_side[1])} = {total} {unit}, so {flag(missing)} would be "
            f"{total} / {term(partner)} = {total / known[partner]:.4g}, not a whole number. "
            f"Pick values where {total} is a multiple of {flag(partner)}, or pass {flag(missing)} yourself."
        )
    known[missing] = total // known[partner]
    source[missing] = "derived"
    return KnobResolution(known, source)


def apply_batch_knobs(args: Any, passed: set[str]) -> KnobResolution:
    """Resolve the knobs of a parsed namespace in place; records the resolution as ``args.batch_knobs``."""
    resolution = resolve_batch_knobs({k: getattr(args, k) for k in KNOBS}, passed)
    for knob, value in resolution.values.items():
        setattr(args, knob, value)
    args.batch_knobs = dict(resolution.source)
    return resolution


def _rule() -> str:
    return ("(Rule: rollout_batch_size × n_samples_per_prompt = global_batch_size × num_steps_per_rollout; "
            "any three given fill the fourth.)")
