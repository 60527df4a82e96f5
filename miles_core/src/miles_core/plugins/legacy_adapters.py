"""Adapters from Miles's legacy call forms to the forms the registries hold.

Miles accepts two spellings of a custom generate function and of a rollout function; users migrating
from Miles or slime bring the old ones. We detect the old form with Miles's own rule (at least three
parameters, the first not named ``input``) and wrap it, so everything downstream sees one form:

- generate: legacy ``async def generate(args, sample, sampling_params, evaluation=False)`` becomes
  ``async def generate(input: GenerateFnInput)`` (``input.args``, ``.sample``, ``.sampling_params``,
  ``.evaluation``; the dataclass lives in ``miles_core.rollout.generate_types``);
- rollout: legacy ``fn(args, rollout_id, data_source, evaluation=False)`` becomes a factory taking
  ``RolloutFnConstructorInput(args, data_source, ...)`` whose instances take ``RolloutFnTrainInput`` /
  ``RolloutFnEvalInput`` and return ``RolloutFnTrainOutput`` / ``RolloutFnEvalOutput``
  (``miles_core.rollout.rollout_types``), wrapping a raw list/dict result as Miles does.

The rollout types are imported lazily (inside calls), so importing this module stays cheap.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["is_legacy_signature", "adapt_generate_function", "adapt_rollout_function", "LegacyRolloutFn"]


def is_legacy_signature(fn: Callable[..., Any]) -> bool:
    """Miles's detection rule: at least three parameters and the first is not named ``input``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: not something we can adapt
        return False
    return len(params) >= 3 and params[0].name != "input"


def _evaluation_passing(fn: Callable[..., Any]) -> str:
    """How ``fn`` takes ``evaluation``: ``"keyword"``, ``"positional"`` (4th parameter) or ``"no"``."""
    params = list(inspect.signature(fn).parameters.values())
    kinds = {p.kind for p in params}
    if "evaluation" in {p.name for p in params} or inspect.Parameter.VAR_KEYWORD in kinds:
        return "keyword"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 4 or inspect.Parameter.VAR_POSITIONAL in kinds:
        return "positional"
    return "no"


def _call_with_evaluation(fn: Callable[..., Any], passing: str, evaluation: bool, *args: Any) -> Any:
    if passing == "keyword":
        return fn(*args, evaluation=evaluation)
    if passing == "positional":
        return fn(*args, evaluation)
    return fn(*args)


def adapt_generate_function(obj: Any) -> Callable[..., Any]:
    """The ``GenerateFnInput`` form of ``obj`` (a function, or a class instantiated with no arguments)."""
    fn = obj() if inspect.isclass(obj) else obj
    if not callable(fn):
        raise TypeError(f"expected a generate function or class, got {type(fn).__name__}")
    if not is_legacy_signature(fn):
        return fn
    passing = _evaluation_passing(fn)

    async def generate(input: Any) -> Any:
        result = _call_with_evaluation(fn, passing, bool(input.evaluation), input.args, input.sample,
                                       input.sampling_params)
        if inspect.isawaitable(result):
            result = await result
        return result

    # Not functools.wraps: its __wrapped__ would make inspect.signature report the legacy signature again.
    generate.__name__ = getattr(fn, "__name__", type(fn).__name__)
    generate.__qualname__ = f"legacy[{getattr(fn, '__qualname__', generate.__name__)}]"
    generate.__doc__ = getattr(fn, "__doc__", None)
    generate.legacy_fn = fn  # type: ignore[attr-defined]
    return generate


def _is_eval_input(input: Any) -> bool:
    evaluation = getattr(input, "evaluation", None)
    if isinstance(evaluation, bool):
        return evaluation
    try:
        from miles_core.rollout.rollout_types import RolloutFnEvalInput
    except ImportError:
        return "eval" in type(input).__name__.lower()
    return isinstance(input, RolloutFnEvalInput)


def _wrap_output(output: Any, evaluation: bool) -> Any:
    """A raw list (train) or dict (eval) from a legacy function, as the rollout output types."""
    if hasattr(output, "metrics") and (hasattr(output, "samples") or hasattr(output, "data")):
        return output
    from miles_core.rollout.rollout_types import RolloutFnEvalOutput, RolloutFnTrainOutput

    return RolloutFnEvalOutput(data=output) if evaluation else RolloutFnTrainOutput(samples=output)


class LegacyRolloutFn:
    """A legacy ``fn(args, rollout_id, data_source, evaluation=False)`` behind the class-based interface."""

    def __init__(self, constructor_input: Any, fn: Callable[..., Any]):
        self.args = constructor_input.args
        self.data_source = constructor_input.data_source
        self.fn = fn
        self._passing = _evaluation_passing(fn)

    def __call__(self, input: Any) -> Any:
        evaluation = _is_eval_input(input)
        output = _call_with_evaluation(self.fn, self._passing, evaluation, self.args, input.rollout_id,
                                       self.data_source)
        if inspect.isawaitable(output):
            return self._finish(output, evaluation)
        return _wrap_output(output, evaluation)

    async def _finish(self, pending: Any, evaluation: bool) -> Any:
        return _wrap_output(await pending, evaluation)

    def __repr__(self) -> str:
        return f"LegacyRolloutFn({getattr(self.fn, '__qualname__', self.fn)!r})"


def adapt_rollout_function(obj: Any) -> Callable[..., Any]:
    """A factory taking ``RolloutFnConstructorInput``: a class as is, a legacy function wrapped."""
    if inspect.isclass(obj):
        return obj
    if not callable(obj):
        raise TypeError(f"expected a rollout function or class, got {type(obj).__name__}")
    if not is_legacy_signature(obj):
        return obj  # already a factory: factory(constructor_input) -> callable

    def factory(constructor_input: Any) -> LegacyRolloutFn:
        return LegacyRolloutFn(constructor_input, obj)

    factory.__name__ = getattr(obj, "__name__", "rollout")
    factory.__qualname__ = f"legacy[{getattr(obj, '__qualname__', factory.__name__)}]"
    factory.legacy_fn = obj  # type: ignore[attr-defined]
    return factory
