"""The trainer's loss API: advantages once per rollout, then one loss per micro-batch.

This is the only module a train backend calls. It dispatches on the flags and on the selected
:class:`~miles_core.plugins.types.LossEstimatorSpec`; the formulas live in one function each in
``advantages``, ``kl``, ``policy_loss``, ``value_loss`` and ``reducers``.

**Batch layout.** A batch is a dict of per-sample lists, every tensor 1-D over the sample's *response*
tokens (length ``response_lengths[i]``):

=====================  ===========================================================================
key                    meaning
=====================  ===========================================================================
``loss_masks``         1 where the token is trained on (list[int] or tensor per sample)
``response_lengths``   int per sample (defaults to ``len(loss_masks[i])``)
``total_lengths``      prompt + response length per sample (only passed on to custom functions)
``rewards``            float per sample, already normalised per ``estimator.reward_normalization``
``raw_reward``         float per sample, as the reward model gave it (not read here)
``log_probs``          old policy, recomputed by the trainer before the first optimizer step
``rollout_log_probs``  old policy as scored by the rollout engine
``ref_log_probs``      reference policy (``--use-kl-loss`` or ``--kl-coef``)
``teacher_log_probs``  teacher (on-policy distillation)
``values``             critic values before the update (PPO)
``advantages``         filled by :func:`compute_advantages_and_returns`
``returns``            filled by :func:`compute_advantages_and_returns`
=====================  ===========================================================================

**Scaling** (Miles's FSDP path, anatomy §7.5). Every loss and metric returned here is already
multiplied by :func:`loss_scale`, so that the backend only has to **sum over its micro-batches, then
average over data-parallel ranks** (what FSDP/DDP gradient averaging does to the loss; use
``all_reduce(SUM) / dp_size`` for metrics). The result is:

- per-sample mode (default): ``(1/B) · Σ_samples (token-mean of the sample)``, where ``B`` is
  ``global_batch_size``, the number of samples in the optimizer step over all DP ranks;
- per-token mode (``--calculate-per-token-loss``): the mean over every trained token of the step,
  where ``global_num_tokens`` is the count of ``loss_masks == 1`` over all DP ranks
  (:func:`count_loss_tokens` per rank, then all-reduce SUM).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from miles_core.training import policy_loss as pl
from miles_core.training.advantages import masked_whiten
from miles_core.training.kl import compute_approx_kl
from miles_core.training.reducers import Reducer, get_reducer
from miles_core.training.value_loss import clipped_value_loss

__all__ = [
    "LOSS_FLAG_DEFAULTS",
    "flag",
    "compute_advantages_and_returns",
    "micro_batch_loss",
    "policy_loss",
    "sft_loss",
    "custom_loss",
    "value_loss",
    "loss_scale",
    "count_loss_tokens",
    "as_token_tensors",
]

Batch = dict[str, Any]
Metrics = dict[str, torch.Tensor]

#: Miles's defaults of every flag read here; used when a namespace lacks one (hand-built args in tests,
#: or a plugin flag whose plugin was blocked). ``None`` for ``eps_clip_high`` means "same as eps_clip".
LOSS_FLAG_DEFAULTS: dict[str, Any] = {
    "loss_type": "policy_loss",
    "kl_coef": 0.0,
    "use_kl_loss": False,
    "kl_loss_coef": 0.0,
    "kl_loss_type": "k1",
    "use_unbiased_kl": False,
    "entropy_coef": 0.0,
    "eps_clip": 0.2,
    "eps_clip_high": None,
    "eps_clip_c": None,
    "use_tis": False,
    "tis_clip": 2.0,
    "tis_clip_low": 0.0,
    "get_mismatch_metrics": False,
    "custom_tis_function_path": None,
    "use_rollout_logprobs": False,
    "calculate_per_token_loss": False,
    "custom_pg_loss_reducer_function_path": None,
    "custom_loss_function_path": None,
    "normalize_advantages": False,
    "disable_compute_advantages_and_returns": False,
    "gamma": 1.0,
    "lambd": 1.0,
    "opd_kl_coef": 1.0,
    "value_clip": 0.2,
    "use_opsm": False,
    "opsm_delta": 1e-4,
}


def flag(args: argparse.Namespace, name: str) -> Any:
    """``args.<name>``, or Miles's default from :data:`LOSS_FLAG_DEFAULTS` when the namespace lacks it."""
    return getattr(args, name, LOSS_FLAG_DEFAULTS[name])


# ---------------------------------------------------------------------------------------------------
# Once per rollout
# ---------------------------------------------------------------------------------------------------


def compute_advantages_and_returns(
    args: argparse.Namespace, batch: Batch, estimator: Any, *, dp_group: Any = None
) -> None:
    """Fill ``batch["advantages"]`` and ``batch["returns"]`` for every sample of this rank.

    Calls ``estimator.compute_advantages(args, batch)`` and then, with ``--normalize-advantages``,
    whitens the advantages over the trained tokens of the whole data-parallel group (anatomy §7.3), so
    every rank must call this with its share of the rollout at the same time.

    Reads ``rewards``, ``loss_masks`` and, depending on the estimator, ``log_probs`` (or
    ``rollout_log_probs`` with ``--use-rollout-logprobs``), ``ref_log_probs`` (``--kl-coef`` ≠ 0),
    ``values`` (``ppo``), ``teacher_log_probs`` (``on_policy_distillation``).

    :param estimator: the selected :class:`~miles_core.plugins.types.LossEstimatorSpec`.
    :param dp_group: the process group to whiten over; ``None`` means the default group when
        ``torch.distributed`` is initialised (every FSDP rank is a data-parallel rank), else local.
    """
    if flag(args, "disable_compute_advantages_and_returns") or flag(args, "loss_type") == "sft_loss":
        return
    estimator.compute_advantages(args, batch)
    missing = [key for key in ("advantages", "returns") if key not in batch]
    if missing:
        raise RuntimeError(
            f"advantage estimator {estimator.name!r} did not fill batch[{missing[0]!r}]; "
            "compute_advantages(args, batch) must set both 'advantages' and 'returns'"
        )
    if flag(args, "normalize_advantages"):
        masks = as_token_tensors(batch["loss_masks"], like=batch["advantages"])
        batch["advantages"] = masked_whiten(batch["advantages"], masks, process_group=dp_group)


# ---------------------------------------------------------------------------------------------------
# Once per micro-batch
# ---------------------------------------------------------------------------------------------------


def loss_scale(
    args: argparse.Namespace, *, global_batch_size: int, global_num_tokens: int | None = None, dp_size: int = 1
) -> float:
    """The factor that turns a micro-batch's Σ (per-sample means or per-token values) into its share
    of the step objective once the backend sums micro-batches and averages over ``dp_size`` ranks.

    Per-sample mode: ``dp_size / global_batch_size`` (Miles FSDP: ``loss *= |DP| / B``).
    Per-token mode: ``dp_size / global_num_tokens`` (a global token mean).
    """
    if flag(args, "calculate_per_token_loss"):
        if global_num_tokens is None:
            raise ValueError(
                "--calculate-per-token-loss needs global_num_tokens: the number of trained tokens of the step "
                "over all data-parallel ranks (count_loss_tokens per rank, all-reduced)"
            )
        return dp_size / max(int(global_num_tokens), 1)
    if global_batch_size <= 0:
        raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
    return dp_size / global_batch_size


def count_loss_tokens(loss_masks: Sequence[Any]) -> int:
    """The number of trained tokens (``loss_mask == 1``) in these samples."""
    return int(sum(float(torch.as_tensor(m).sum()) for m in loss_masks))


def micro_batch_loss(
    args: argparse.Namespace,
    batch: Batch,
    log_probs: list[torch.Tensor],
    entropy: list[torch.Tensor] | None,
    estimator: Any,
    *,
    global_batch_size: int,
    global_num_tokens: int | None = None,
    dp_size: int = 1,
    logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """The loss of one micro-batch, per ``--loss-type``, scaled by :func:`loss_scale`.

    - ``policy_loss`` (default): :func:`policy_loss`.
    - ``sft_loss``: :func:`sft_loss` (``−`` mean log-likelihood of the trained tokens).
    - ``custom_loss``: the function of ``--custom-loss-function-path`` (:func:`custom_loss`).

    :param batch: the micro-batch's samples (see the module docstring for the keys).
    :param log_probs: current-policy log-probs per sample over response tokens (with grad).
    :param entropy: current-policy entropy per sample, or ``None`` (then ``--entropy-coef`` must be 0).
    :param estimator: the selected :class:`~miles_core.plugins.types.LossEstimatorSpec`.
    :param global_batch_size: samples in this optimizer step over all DP ranks (per-sample mode).
    :param global_num_tokens: trained tokens in this step over all DP ranks (per-token mode).
    :param dp_size: number of data-parallel ranks the backend averages over.
    :param logits: the model output, handed to a custom loss only.
    :return: ``(loss, metrics)``; metrics are detached 0-d tensors under Miles's names (no prefix).
    """
    scale = loss_scale(args, global_batch_size=global_batch_size, global_num_tokens=global_num_tokens, dp_size=dp_size)
    loss_type = flag(args, "loss_type")
    if loss_type == "policy_loss":
        loss, metrics = policy_loss(args, batch, log_probs, entropy, estimator)
    elif loss_type == "sft_loss":
        loss, metrics = sft_loss(args, batch, log_probs)
    elif loss_type == "custom_loss":
        loss, metrics = custom_loss(args, batch, log_probs, entropy, logits)
    else:
        raise ValueError(f"unknown --loss-type {loss_type!r}; one of policy_loss, sft_loss, custom_loss")
    return loss * scale, {name: (value.detach() * scale) for name, value in metrics.items()}


def policy_loss(
    args: argparse.Namespace,
    batch: Batch,
    log_probs: list[torch.Tensor],
    entropy: list[torch.Tensor] | None,
    estimator: Any,
) -> tuple[torch.Tensor, Metrics]:
    """The PPO-family loss of one micro-batch, **unscaled** (Σ over samples of per-sample token means).

    ``loss = pg_loss − entropy_coef·entropy_loss + kl_loss_coef·kl_loss`` (anatomy §7.4), where
    ``pg_loss`` is the clipped surrogate (token ratio, or GSPO's sequence ratio when
    ``estimator.sequence_level_ratio``), optionally OPSM-masked and TIS-weighted.

    Reads ``advantages``, ``loss_masks``, old ``log_probs`` (or ``rollout_log_probs`` with
    ``--use-rollout-logprobs``), ``rollout_log_probs`` (TIS, mismatch metrics), ``ref_log_probs``
    (``--use-kl-loss``), ``teacher_log_probs`` (``opd_reverse_kl``).

    Metrics: ``loss``, ``pg_loss``, ``pg_clipfrac``, ``ppo_kl``, ``ess_ratio``, and when they apply
    ``entropy_loss``, ``kl_loss``, ``ois``, ``tis``, ``tis_clipfrac``, ``tis_abs`` (or a custom TIS
    function's keys), ``train_rollout_logprob_abs_diff``, ``train_rollout_kl``, ``opsm_clipfrac``,
    ``opd_reverse_kl``.
    """
    response_lengths = _response_lengths(batch)
    masks = as_token_tensors(batch["loss_masks"], like=log_probs)
    total_lengths = list(batch.get("total_lengths") or response_lengths)
    reducer = get_reducer(response_lengths, masks, flag(args, "calculate_per_token_loss"))

    use_rollout = flag(args, "use_rollout_logprobs")
    old_key = "rollout_log_probs" if use_rollout else "log_probs"
    old_list = _require(batch, old_key, "the old policy's log-probs" + (" (--use-rollout-logprobs)" if use_rollout else ""))
    new = torch.cat(list(log_probs)).float()  # the loss math runs in fp32 whatever the model's dtype
    old = torch.cat(_on(old_list, new)).detach()
    mask = torch.cat(masks).to(new.device)
    advantage_list = _require(batch, "advantages", "call compute_advantages_and_returns first")
    advantages = torch.cat(_on(advantage_list, new)).detach()

    ppo_kl = pl.compute_ppo_kl(new, old, mask, response_lengths, sequence_level=estimator.sequence_level_ratio)
    advantages = pl.zero_where_masked(advantages, mask)
    eps_clip = flag(args, "eps_clip")
    eps_clip_high = flag(args, "eps_clip_high")
    pg, clipfrac = pl.ppo_clip_loss(
        ppo_kl, advantages, eps_clip, eps_clip if eps_clip_high is None else eps_clip_high, flag(args, "eps_clip_c")
    )
    metrics: Metrics = {}

    if flag(args, "use_opsm"):
        opsm_keep = pl.opsm_mask(ppo_kl, advantages, mask, response_lengths, flag(args, "opsm_delta"))
        pg = pg * opsm_keep
        metrics["opsm_clipfrac"] = reducer(1.0 - opsm_keep)

    pg_masks, pg_default_reducer = masks, reducer
    rollout_list = batch.get("rollout_log_probs")
    use_tis, want_mismatch = flag(args, "use_tis"), flag(args, "get_mismatch_metrics")
    if use_tis or want_mismatch:
        train_list = _require(batch, "log_probs", "the trainer-recomputed old log-probs (TIS)")
        _require(batch, "rollout_log_probs", "rollout log-probs (--use-tis / --get-mismatch-metrics)")
        metrics["ois"] = reducer(torch.exp(torch.clamp(-ppo_kl.detach(), -pl.LOG_RATIO_CLAMP, pl.LOG_RATIO_CLAMP)))
        weighted, tis_masks, tis_metrics = _tis_function(args)(
            args=args, pg_loss=pg, train_log_probs=_on(train_list, new), rollout_log_probs=_on(rollout_list, new),
            loss_masks=masks, total_lengths=total_lengths, response_lengths=response_lengths,
            parallel_state=None, max_seq_lens=None,
        )
        if use_tis:  # --get-mismatch-metrics alone only observes
            pg = weighted
            if tis_masks is not masks:  # a rejecting TIS function changes the pg-loss denominators
                pg_masks, pg_default_reducer = as_token_tensors(tis_masks, like=log_probs), None
        # Miles reduces TIS metrics with the pre-rejection masks (anatomy §2, --custom-tis-function-path).
        metrics.update({name: reducer(value.detach().float()) for name, value in tis_metrics.items()})

    pg_reducer = _pg_loss_reducer(args, total_lengths, response_lengths, pg_masks, pg_default_reducer)
    pg_loss = pg_reducer(pg)
    metrics["pg_loss"] = pg_loss
    metrics["pg_clipfrac"] = reducer(clipfrac)
    metrics["ppo_kl"] = reducer(ppo_kl)
    metrics["ess_ratio"] = reducer(pl.ess_ratio_per_token(ppo_kl.detach(), mask, response_lengths))
    loss = pg_loss

    entropy_coef = flag(args, "entropy_coef")
    if entropy is not None:
        entropy_flat = torch.cat(list(entropy)).to(new.device)
        entropy_loss = reducer(entropy_flat if entropy_coef != 0 else entropy_flat.detach())
        metrics["entropy_loss"] = entropy_loss
        if entropy_coef != 0:
            loss = loss - entropy_coef * entropy_loss
    elif entropy_coef != 0:
        raise ValueError("--entropy-coef is non-zero but the backend passed no entropy to the loss")

    if flag(args, "use_kl_loss"):
        ref = torch.cat(_on(_require(batch, "ref_log_probs", "reference log-probs (--use-kl-loss)"), new)).detach()
        ratio = None
        if flag(args, "use_unbiased_kl"):
            ratio = torch.exp(torch.clamp(new - old, -pl.LOG_RATIO_CLAMP, pl.LOG_RATIO_CLAMP)).detach()
        kl = compute_approx_kl(new, ref, flag(args, "kl_loss_type"), importance_ratio=ratio)
        kl_loss = reducer(pl.zero_where_masked(kl, mask))
        metrics["kl_loss"] = kl_loss
        loss = loss + flag(args, "kl_loss_coef") * kl_loss

    if rollout_list is not None and "log_probs" in batch and batch["log_probs"] is not None:
        train_old = torch.cat(_on(batch["log_probs"], new)).detach()
        rollout = torch.cat(_on(rollout_list, new)).detach()
        metrics["train_rollout_logprob_abs_diff"] = reducer((train_old - rollout).abs())
        metrics["train_rollout_kl"] = reducer(compute_approx_kl(rollout, train_old, "low_var_kl"))
    teacher_list = batch.get("teacher_log_probs")
    if getattr(estimator, "needs_teacher", False) and teacher_list is not None:
        # teacher log-probs may cover prompt + response: keep each sample's last response_length entries
        teacher = torch.cat([t[t.numel() - n:] for t, n in zip(_on(teacher_list, new), response_lengths, strict=True)])
        metrics["opd_reverse_kl"] = reducer(old - teacher.detach())

    if new.numel() == 0:  # keep the graph connected on an empty micro-batch
        loss = loss + 0.0 * new.sum()
    metrics["loss"] = loss
    return loss, metrics


def sft_loss(args: argparse.Namespace, batch: Batch, log_probs: list[torch.Tensor]) -> tuple[torch.Tensor, Metrics]:
    """Supervised fine-tuning: ``−sum_of_sample_mean(log_probs)`` over trained tokens (unscaled).

    Reads ``loss_masks`` only. Metrics: ``loss``.
    """
    masks = as_token_tensors(batch["loss_masks"], like=log_probs)
    reducer = get_reducer(_response_lengths(batch), masks, flag(args, "calculate_per_token_loss"))
    new = torch.cat(list(log_probs)).float()
    loss = -reducer(pl.zero_where_masked(new, torch.cat(masks).to(new.device)))
    if new.numel() == 0:
        loss = loss + 0.0 * new.sum()
    return loss, {"loss": loss}


def custom_loss(
    args: argparse.Namespace,
    batch: Batch,
    log_probs: list[torch.Tensor],
    entropy: list[torch.Tensor] | None,
    logits: torch.Tensor | None,
) -> tuple[torch.Tensor, Metrics]:
    """Call ``--custom-loss-function-path`` with Miles's contract, unscaled.

    The function is ``loss(args, batch, logits, sum_of_sample_mean) -> (loss, {name: 0-d tensor})``.
    Its ``batch`` is this micro-batch plus ``current_log_probs`` and ``current_entropy`` (the
    backend's forward already computed them, so custom losses need not redo it from ``logits``).
    ``sum_of_sample_mean`` reduces a tensor concatenated over the micro-batch's response tokens.
    """
    fn = _load_path_flag(args, "custom_loss_function_path")
    masks = as_token_tensors(batch["loss_masks"], like=log_probs)
    reducer = get_reducer(_response_lengths(batch), masks, flag(args, "calculate_per_token_loss"))
    view = dict(batch, current_log_probs=list(log_probs), current_entropy=None if entropy is None else list(entropy))
    result = fn(args, view, logits, reducer)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(
            f"--custom-loss-function-path {args.custom_loss_function_path!r} must return (loss, metrics), "
            f"got {type(result).__name__}"
        )
    loss, metrics = result
    metrics = {name: torch.as_tensor(value, dtype=torch.float32) for name, value in dict(metrics or {}).items()}
    metrics.setdefault("loss", loss.detach())
    return loss, metrics


def value_loss(
    args: argparse.Namespace,
    batch: Batch,
    values: list[torch.Tensor],
    *,
    global_batch_size: int,
    global_num_tokens: int | None = None,
    dp_size: int = 1,
) -> tuple[torch.Tensor, Metrics]:
    """The PPO critic's clipped value loss of one micro-batch, scaled like :func:`micro_batch_loss`.

    Reads ``values`` (critic values before the update), ``returns``, ``loss_masks``.

    :param values: current critic values per sample over response tokens (with grad).
    :return: ``(loss, {"value_loss", "value_clipfrac"})`` (the critic's logger prefixes ``critic-``).
    """
    masks = as_token_tensors(batch["loss_masks"], like=values)
    reducer = get_reducer(_response_lengths(batch), masks, flag(args, "calculate_per_token_loss"))
    new = torch.cat(list(values)).float()
    old = torch.cat(_on(_require(batch, "values", "the critic's values before the update"), new)).detach()
    returns = torch.cat(_on(_require(batch, "returns", "returns (call compute_advantages_and_returns first)"), new))
    per_token, clipfrac = clipped_value_loss(new, old, returns.detach(), flag(args, "value_clip"))
    loss = reducer(per_token)
    if new.numel() == 0:
        loss = loss + 0.0 * new.sum()
    scale = loss_scale(args, global_batch_size=global_batch_size, global_num_tokens=global_num_tokens, dp_size=dp_size)
    return loss * scale, {"value_loss": loss.detach() * scale, "value_clipfrac": reducer(clipfrac).detach() * scale}


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def as_token_tensors(values: Sequence[Any], like: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Per-sample float32 tensors from lists of ints/floats or tensors, on the device of ``like[0]``."""
    device = None
    if like:
        first = next((t for t in like if isinstance(t, torch.Tensor)), None)
        device = first.device if first is not None else None
    return [torch.as_tensor(v, dtype=torch.float32, device=device) for v in values]


def _on(values: Sequence[Any], like: torch.Tensor) -> list[torch.Tensor]:
    """Per-sample tensors in ``like``'s dtype and device (batch tensors may still sit on the CPU)."""
    return [torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in values]


def _response_lengths(batch: Batch) -> list[int]:
    lengths = batch.get("response_lengths")
    if lengths is None:
        return [len(m) for m in batch["loss_masks"]]
    return [int(n) for n in lengths]


def _require(batch: Batch, key: str, what: str) -> Any:
    value = batch.get(key)
    if value is None:
        raise KeyError(f"the loss needs batch[{key!r}]: {what}; the train backend did not provide it")
    return value


def _load_path_flag(args: argparse.Namespace, dest: str) -> Any:
    """The function named by a ``--*-path`` flag (imported once and cached by ``path_flags``)."""
    from miles_core.plugins.path_flags import flag_name, load_path_flag

    loaded = load_path_flag(args, dest)
    if loaded is None:
        raise ValueError(f"{flag_name(dest)} is not set")
    return loaded


def _tis_function(args: argparse.Namespace) -> Callable[..., Any]:
    if flag(args, "custom_tis_function_path"):
        return _load_path_flag(args, "custom_tis_function_path")
    return pl.vanilla_tis


def _pg_loss_reducer(
    args: argparse.Namespace,
    total_lengths: list[int],
    response_lengths: list[int],
    masks: list[torch.Tensor],
    default: Reducer | None,
) -> Reducer:
    """``--custom-pg-loss-reducer-function-path`` (Miles factory contract) or the default reducer.

    A factory that also accepts an ``args`` keyword (as :func:`miles_core.training.reducers.dr_grpo`)
    gets the parsed flags too, so its constants can come from the command line.
    """
    per_token = flag(args, "calculate_per_token_loss")
    if flag(args, "custom_pg_loss_reducer_function_path"):
        factory = _load_path_flag(args, "custom_pg_loss_reducer_function_path")
        try:
            takes_args = "args" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes_args = False
        extra = {"args": args} if takes_args else {}
        return factory(total_lengths, response_lengths, masks, per_token, **extra)
    return default if default is not None else get_reducer(response_lengths, masks, per_token)
