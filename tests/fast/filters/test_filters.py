"""Built-in filters, calling dynamic filters (legacy bools included), drop counting and stage checks."""

from __future__ import annotations

import sys
import types

import pytest
from miles_core.filters.core_filters import check_no_aborted, pop_first
from miles_core.filters.dynamic import DropCounter, call_dynamic_filter
from miles_core.filters.selection import resolve_filter
from miles_core.plugins.manager import UnknownNameError

from miles_core import DynamicFilterOutput, FilterSpec, Sample, SampleStatus, hookimpl


def _group(*statuses):
    return [Sample(index=i, status=status) for i, status in enumerate(statuses)]


def test_pop_first_takes_the_oldest_groups_in_place():
    buffer = [["a"], ["b"], ["c"]]
    assert pop_first(None, None, buffer, 2) == [["a"], ["b"]]
    assert buffer == [["c"]]
    assert pop_first(None, None, buffer, 5) == [["c"]] and buffer == []
    assert pop_first(None, None, buffer, 1) == []


def test_check_no_aborted():
    done = _group(SampleStatus.COMPLETED, SampleStatus.TRUNCATED)
    assert check_no_aborted(None, done) == DynamicFilterOutput(keep=True)
    aborted = _group(SampleStatus.COMPLETED, SampleStatus.ABORTED)
    assert check_no_aborted(None, aborted) == DynamicFilterOutput(keep=False, reason="group_has_aborted")
    assert check_no_aborted(None, [aborted]).keep is False  # nested lists (split trajectories) are looked into


def test_call_dynamic_filter_wraps_legacy_answers():
    group = _group(SampleStatus.COMPLETED)
    assert call_dynamic_filter(None, None, group) == DynamicFilterOutput(keep=True)
    assert call_dynamic_filter(lambda args, samples: False, None, group) == DynamicFilterOutput(keep=False)
    assert call_dynamic_filter(lambda args, samples: 1, None, group).keep is True

    class MilesOutput:  # Miles's own dataclass, duck-typed
        keep, reason = False, "zero_std_1.0"

    assert call_dynamic_filter(lambda args, samples: MilesOutput(), None, group) == DynamicFilterOutput(False, "zero_std_1.0")
    with pytest.raises(TypeError, match="returned None"):
        call_dynamic_filter(lambda args, samples: None, None, group)


def test_drop_counter_names_metrics_by_reason():
    counter = DropCounter("rollout/dynamic_filter")
    counter.add("zero_std_1.0")
    counter.add("zero_std_1.0")
    counter.add(None)
    counter.add("weird reason/with slash", 3)
    assert counter.total() == 6
    assert counter.metrics(name_prefix="drop_") == {
        "rollout/dynamic_filter/drop_unspecified": 1.0,
        "rollout/dynamic_filter/drop_weird_reason_with_slash": 3.0,
        "rollout/dynamic_filter/drop_zero_std_1.0": 2.0,
    }


def test_resolve_filter_by_name_path_and_stage(miles_args, miles_plugin_manager, monkeypatch):
    pm = miles_plugin_manager
    assert resolve_filter(miles_args(), pm, "buffer") is pop_first  # the default --buffer-filter
    assert resolve_filter(miles_args(), pm, "dynamic_sampling") is None
    assert resolve_filter(miles_args(dynamic_sampling_filter="check_no_aborted"), pm, "dynamic_sampling") is check_no_aborted

    with pytest.raises(ValueError, match=r"--buffer-filter 'check_no_aborted' is a 'dynamic_sampling' filter, not a 'buffer' one. Filters for this stage: pop_first"):
        resolve_filter(miles_args(buffer_filter="check_no_aborted"), pm, "buffer")
    with pytest.raises(UnknownNameError, match=r"--dynamic-sampling-filter 'nope'.*check_no_aborted"):
        resolve_filter(miles_args(dynamic_sampling_filter="nope"), pm, "dynamic_sampling")

    module = types.ModuleType("my_filters_for_test")
    module.keep_all = lambda args, samples: True
    monkeypatch.setitem(sys.modules, "my_filters_for_test", module)
    args = miles_args(dynamic_sampling_filter="check_no_aborted", dynamic_sampling_filter_path="my_filters_for_test:keep_all")
    assert resolve_filter(args, pm, "dynamic_sampling") is module.keep_all  # the Miles path flag wins


def test_core_filters_are_registered_with_their_stages(miles_plugin_manager, register_plugin):
    assert miles_plugin_manager.get("filters", "pop_first").stage == "buffer"
    assert miles_plugin_manager.get("filters", "check_no_aborted").stage == "dynamic_sampling"

    class Extra:
        @hookimpl
        def miles_filters(self):
            yield FilterSpec(name="drop_all", description="drop", fn=lambda a, s: False, stage="dynamic_sampling")

    register_plugin(Extra(), name="extra_filters")
    assert call_dynamic_filter(miles_plugin_manager.get("filters", "drop_all").fn, None, []).keep is False
