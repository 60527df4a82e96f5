"""Every spec dataclass checks itself in ``__post_init__``: a bad plugin fails where it is written."""

from __future__ import annotations

import dataclasses

import pytest
from miles_core.plugins.types import (
    SPEC_TYPES,
    DataSourceSpec,
    DynamicFilterOutput,
    EngineSpec,
    FilterSpec,
    GenerateFunctionSpec,
    LoggerSpec,
    LossEstimatorSpec,
    ModelSpec,
    Provenance,
    RewardModelSpec,
    RolloutFunctionSpec,
    TrainBackendSpec,
)


def _fn(*args, **kwargs):
    return None


#: spec type → (its callable field, or None) and the keyword arguments of a valid instance
VALID = {
    DataSourceSpec: ("factory", {"factory": _fn}),
    GenerateFunctionSpec: ("fn", {"fn": _fn}),
    RolloutFunctionSpec: ("factory", {"factory": _fn}),
    RewardModelSpec: ("fn", {"fn": _fn}),
    FilterSpec: ("fn", {"fn": _fn}),
    LossEstimatorSpec: ("compute_advantages", {"compute_advantages": _fn}),
    ModelSpec: (None, {}),
    LoggerSpec: ("factory", {"factory": _fn}),
    EngineSpec: ("command", {"command": _fn}),
    TrainBackendSpec: (None, {"actor_class": "pkg.actor:Actor"}),
}


def test_every_registered_spec_type_is_covered():
    assert set(SPEC_TYPES.values()) == set(VALID)


@pytest.mark.parametrize("spec_type", list(VALID), ids=lambda t: t.__name__)
def test_valid_spec_is_frozen(spec_type):
    spec = spec_type(name="ok-name_1.0", description="One line", **VALID[spec_type][1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("spec_type", list(VALID), ids=lambda t: t.__name__)
@pytest.mark.parametrize("bad_name", ["", "has space", "slash/name", "colon:name", None, 3])
def test_name_must_be_selectable(spec_type, bad_name):
    with pytest.raises(ValueError) as error:
        spec_type(name=bad_name, description="x", **VALID[spec_type][1])
    assert str(error.value) == (f"{spec_type.__name__}.name must be a non-empty string of letters, digits, "
                                f"'_', '-' or '.'; got {bad_name!r}")


@pytest.mark.parametrize("spec_type", list(VALID), ids=lambda t: t.__name__)
def test_description_must_be_one_nonempty_line(spec_type):
    kwargs = VALID[spec_type][1]
    for empty in ("", "   ", None):
        with pytest.raises(ValueError) as error:
            spec_type(name="n", description=empty, **kwargs)
        assert str(error.value) == f"{spec_type.__name__} 'n' needs a one-line description"
    with pytest.raises(ValueError) as error:
        spec_type(name="n", description="first\nsecond", **kwargs)
    assert str(error.value) == f"{spec_type.__name__} 'n': description must be one line"


@pytest.mark.parametrize("spec_type", [t for t, (field, _) in VALID.items() if field], ids=lambda t: t.__name__)
def test_callable_field_is_required(spec_type):
    field = VALID[spec_type][0]
    for value in (None, "module:function", 3):
        with pytest.raises(TypeError) as error:
            spec_type(name="n", description="d", **{field: value})
        assert str(error.value) == f"{spec_type.__name__} 'n': {field} must be callable, got {value!r}"


#: spec type → its optional callable fields (``None`` allowed) and the keyword arguments of a valid instance
OPTIONAL_CALLABLES = [
    (ModelSpec, field_name, {}) for field_name in
    ("transformer_config", "layer_spec", "hf_to_megatron", "megatron_to_hf", "gpt_model_kwargs")
] + [(LoggerSpec, "enabled_by", {"factory": _fn})]


@pytest.mark.parametrize(("spec_type", "field", "kwargs"), OPTIONAL_CALLABLES,
                         ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_optional_callable_field_is_callable_or_none(spec_type, field, kwargs):
    assert getattr(spec_type(name="n", description="d", **kwargs, **{field: None}), field) is None
    assert getattr(spec_type(name="n", description="d", **kwargs, **{field: _fn}), field) is _fn
    for value in ("module:function", 3):
        with pytest.raises(TypeError) as error:
            spec_type(name="n", description="d", **kwargs, **{field: value})
        assert str(error.value) == f"{spec_type.__name__} 'n': {field} must be callable or None, got {value!r}"


def test_engine_available_must_be_callable():
    with pytest.raises(TypeError) as error:
        EngineSpec(name="n", description="d", command=_fn, available="yes")
    assert str(error.value) == "EngineSpec 'n': available must be callable, got 'yes'"


def test_filter_stage_is_checked():
    for stage in ("dynamic_sampling", "buffer", "sample"):
        assert FilterSpec(name="f", description="d", fn=_fn, stage=stage).stage == stage
    with pytest.raises(ValueError) as error:
        FilterSpec(name="f", description="d", fn=_fn, stage="dynamic")
    assert str(error.value) == "FilterSpec 'f': stage must be 'dynamic_sampling', 'buffer' or 'sample', got 'dynamic'"


def test_train_backend_actor_class_is_an_import_path():
    with pytest.raises(ValueError) as error:
        TrainBackendSpec(name="b", description="d", actor_class="pkg.actor.Actor")
    assert str(error.value) == "TrainBackendSpec 'b': actor_class must be 'module:Class', got 'pkg.actor.Actor'"


def test_model_spec_normalises_and_matches_hf_configs():
    spec = ModelSpec(name="m", description="d", hf_architectures=["Qwen3ForCausalLM"], hf_model_types=["qwen3"])
    assert spec.hf_architectures == ("Qwen3ForCausalLM",) and spec.hf_model_types == ("qwen3",)
    assert spec.matches({"architectures": ["Qwen3ForCausalLM"]})
    assert spec.matches(type("Config", (), {"architectures": None, "model_type": "qwen3"})())
    assert not spec.matches({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})


def test_engine_available_defaults_to_runnable_and_reward_defaults():
    assert EngineSpec(name="e", description="d", command=_fn).available() is None
    reward = RewardModelSpec(name="r", description="d", fn=_fn)
    assert (reward.batched, reward.reward_key) == (False, None)
    assert LossEstimatorSpec(name="l", description="d", compute_advantages=_fn).reward_normalization == "none"
    assert DynamicFilterOutput(keep=False, reason="zero_std") == DynamicFilterOutput(False, "zero_std")


def test_provenance_describes_where_a_spec_comes_from():
    assert Provenance("rm_math", "miles-rm-math", "0.1.0").describe() == "miles-rm-math 0.1.0 (plugin 'rm_math')"
    assert Provenance("rm_math", "miles-rm-math").describe() == "miles-rm-math (plugin 'rm_math')"
    assert Provenance("my_module").describe() == "plugin 'my_module'"
