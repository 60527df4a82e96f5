"""``mask_truncated`` (per-sample stage), ``freshest_first`` (buffer stage), and registration by entry point."""

from __future__ import annotations

import warnings

import pytest
from filters_dapo_support import make_group, namespace
from miles_core.plugins.manager import PluginSelection, build_plugin_manager

from miles_core import Sample, SampleStatus


def test_mask_truncated_marks_only_truncated_samples(dapo_manager):
    spec = dapo_manager.get("filters", "mask_truncated", flag="--rollout-sample-filter")
    assert spec.stage == "sample"
    first = make_group([1, 0], statuses=[SampleStatus.TRUNCATED, SampleStatus.COMPLETED])
    second = make_group([0, 0], statuses=[SampleStatus.COMPLETED, SampleStatus.TRUNCATED])
    assert spec.fn(namespace(), [first, second]) is None
    assert [s.remove_sample for s in first + second] == [True, False, False, True]


def _group(name: str, *versions: list[str]) -> list[Sample]:
    return [Sample(index=i, prompt=name, weight_versions=list(v)) for i, v in enumerate(versions)]


def test_freshest_first_takes_the_newest_groups_out_of_the_buffer(dapo_manager):
    spec = dapo_manager.get("filters", "freshest_first", flag="--buffer-filter")
    assert spec.stage == "buffer"
    old = _group("old", ["1", "2"], ["2"])  # oldest token from version 1
    newer = _group("newer", ["3"], ["3", "4"])
    untouched = _group("untouched", [], [])  # nothing generated yet: freshest
    tie = _group("tie", ["3"])
    odd = _group("odd", ["v-abc"])  # not an integer: oldest
    buffer = [old, newer, odd, untouched, tie]
    taken = spec.fn(namespace(), 5, buffer, 3)
    assert [g[0].prompt for g in taken] == ["untouched", "newer", "tie"]
    assert [g[0].prompt for g in buffer] == ["old", "odd"]
    assert [g[0].prompt for g in spec.fn(namespace(), 6, buffer, 10)] == ["old", "odd"]
    assert buffer == []
    assert spec.fn(namespace(), 7, buffer, 2) == []


def test_names_come_from_the_entry_point(dapo_manager):
    for name in ("nonzero_std", "check_reward_nonzero_std", "mask_truncated", "freshest_first"):
        provenance = dapo_manager.provenance("filters", name)
        assert provenance.distribution == "miles-filters-dapo" and provenance.plugin == "filters_dapo"


def test_blocking_the_distribution_removes_the_filters_and_says_what_to_install():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other plugins of the workspace may be half-built; not our concern here
        manager = build_plugin_manager(PluginSelection(blocked=("miles-filters-dapo",)))
    assert "nonzero_std" not in manager.registry("filters")
    with pytest.raises(ValueError, match="pip install miles-filters-dapo"):
        manager.get("filters", "nonzero_std", flag="--dynamic-sampling-filter")
    group = make_group([1.0], lengths=[10_000])
    manager.hook.miles_after_rewards(args=namespace(rollout_max_response_len=20, overlong_buffer_len=4),
                                     samples=group, evaluation=False)
    assert group[0].reward == 1.0  # the shaping hook went away with the package


def test_plugin_import_is_light():
    import subprocess
    import sys

    code = "import sys, miles_filters_dapo.plugin; print(sorted(m for m in ('torch', 'sympy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
