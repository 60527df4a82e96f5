"""The ``miles`` command: version, help, subcommands, plugin options anywhere, one-line errors, the plan."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from miles_core import __version__

FAKE = "miles_config_fake_plugin"
REFERENCE = Path(__file__).resolve().parent.parent / "config" / "flag_reference.tsv"


def has_row(text: str, *cells: str) -> bool:
    """True when one line of ``text`` holds ``cells`` in order, separated by runs of spaces (a table row)."""
    pattern = re.compile(r"^\s*" + r"\s+".join(re.escape(c) for c in cells) + r"(\s|;|$)")
    return any(pattern.match(line) for line in text.splitlines())


def test_version(miles_cli):
    result = miles_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"miles {__version__} (miles-core ")


def test_help_lists_the_commands(miles_cli):
    result = miles_cli("--help")
    assert result.exit_code == 0
    assert "train" in result.stdout and "plugins" in result.stdout
    assert "may come before or after the command" in result.stdout
    assert miles_cli().stdout == result.stdout  # no command: the same help


def test_train_help_shows_every_reference_flag_with_defaults(miles_cli):
    result = miles_cli("--disable-plugin-autoload", "train", "--help")
    assert result.exit_code == 0
    rows = list(csv.DictReader((line for line in REFERENCE.open() if not line.startswith("#")), delimiter="\t"))
    missing = [row["flag"] for row in rows if row["type"] != "passthrough" and row["flag"] not in result.stdout]
    assert missing == []
    for expected in ("--lr LR", "(default: 1e-06)", "(default: fsdp)", "(default: train_overall)",
                     "--sglang-mem-fraction-static", "Four knobs, one invariant", "--dry-run", "--async"):
        assert expected in result.stdout


def test_unknown_command_is_one_line_with_a_suggestion(miles_cli):
    result = miles_cli("trian")
    assert result.exit_code == 2
    assert result.stderr.startswith("miles: error: argument COMMAND: invalid choice: 'trian'")
    assert "did you mean 'train'?" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_plugin_option_before_or_after_the_subcommand(miles_cli, run_flags, where):
    options = ["--disable-plugin-autoload", "-p", FAKE]
    argv = [*options, "train", *run_flags, "--dry-run"] if where == "before" else \
        ["train", *run_flags, *options, "--dry-run"]
    result = miles_cli(*argv)
    assert result.exit_code == 0, result.stderr
    assert has_row(result.stdout, "reward model", "test_rm", f"plugin '{FAKE}'")
    assert "dry run: nothing started." in result.stdout


def test_plugin_option_forms(miles_cli, run_flags):
    assert miles_cli("train", *run_flags, f"--plugin={FAKE}", "--dry-run").exit_code == 0
    assert miles_cli("train", *run_flags, f"-p{FAKE}", "--dry-run").exit_code == 0


def test_missing_plugin_is_one_line_error(miles_cli):
    result = miles_cli("-p", "no_such_miles_plugin", "train", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith("miles: error: ") and "no_such_miles_plugin" in result.stderr
    assert "Traceback" not in result.stderr


def test_validation_error_is_one_line_and_exit_2(miles_cli, run_flags):
    result = miles_cli("-p", FAKE, "train", *run_flags, "--global-batch-size", "6", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "miles: error: --rollout-batch-size 8 × --n-samples-per-prompt 4 = 32 samples per rollout, but "
        "--global-batch-size 6 × --num-steps-per-rollout 2 = 12 samples trained per rollout. Change one of them so "
        "both sides agree, or leave one out and Miles derives it."
    ]
    assert result.stdout == ""


def test_unknown_selection_name_lists_available_names(miles_cli, run_flags):
    result = miles_cli("-p", FAKE, "train", *run_flags, "--rm-type", "test_rn", "--dry-run")
    assert result.exit_code == 2
    assert "miles: error: unknown --rm-type 'test_rn'. Available: " in result.stderr
    assert "Did you mean 'test_rm'?" in result.stderr


def test_unknown_flag_is_one_line(miles_cli, run_flags):
    result = miles_cli("-p", FAKE, "train", *run_flags, "--n-sample-per-prompt", "4")
    assert result.exit_code == 2
    assert result.stderr.startswith("miles: error: unrecognized arguments: --n-sample-per-prompt 4")
    assert "did you mean --n-samples-per-prompt?" in result.stderr


def test_warnings_are_user_facing(miles_cli, run_flags):
    result = miles_cli("-p", FAKE, "train", *run_flags, "--kl-loss-coef", "0.1", "--dry-run")
    assert result.exit_code == 0
    assert "miles: warning: --kl-loss-coef 0.1 has no effect without --use-kl-loss" in result.stderr


def test_dry_run_prints_the_resolved_plan(miles_cli, run_flags):
    result = miles_cli("--disable-plugin-autoload", "-p", FAKE, "train", *run_flags, "--colocate",
                       "--sglang-mem-fraction-static", "0.7", "--dry-run")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Miles {__version__}: plan of this run (sync loop)")
    assert has_row(out, "data source", "test_source", f"plugin '{FAKE}'")
    assert has_row(out, "train backend", "test_backend", f"plugin '{FAKE}'")
    assert has_row(out, "rollout engine", "test_engine", f"plugin '{FAKE}'; selected with --rollout-engine")
    assert has_row(out, "model spec", "test_arch", f"plugin '{FAKE}'; matched")
    assert "matched architectures ['TestArchForCausalLM'], model_type 'test_arch'" in out
    assert has_row(out, "loggers", "stdout, jsonl")
    for line in (
        "  8 prompts × 4 samples = 32 samples per rollout = 16 per step × 2 steps",
        "  rollout_batch_size 8 (passed), n_samples_per_prompt 4 (passed), global_batch_size 16 (derived), "
        "num_steps_per_rollout 2 (passed)",
        "  run length: 3 rollouts (--num-rollout)",
        "  actor: 1 node(s) × 2 = 2 rank(s), test_backend backend (tp 1, pp 1, cp 1, dp 2)",
        "  router: Miles router (FastAPI) started on this machine",
        "  engine flags: --mem-fraction-static 0.7 --disable-piecewise-cuda-graph",
        "  colocate: yes, offload train: yes, offload rollout: yes",
    ):
        assert line in out.splitlines(), f"missing line {line!r} in:\n{out}"
    assert "dry run: nothing started." in out


def test_async_plan(miles_cli, run_flags):
    result = miles_cli("-p", FAKE, "train", "--async", *run_flags, "--max-weight-staleness", "2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "async loop: generation of rollout k+1 overlaps training on rollout k (max weight staleness 2)" in result.stdout


def test_train_hands_over_to_the_loop(miles_cli, run_flags, monkeypatch):
    import miles_core.train_loop

    calls = []

    def fake_run(args, pm):
        calls.append((args, pm))
        return 7

    monkeypatch.setattr(miles_core.train_loop, "run", fake_run)
    result = miles_cli("-p", FAKE, "train", "--async", *run_flags)
    assert result.exit_code == 7
    (args, pm), = calls
    assert args.async_mode is True and args.global_batch_size == 16 and args.rm_type == "test_rm"
    assert pm.get("reward_models", "test_rm").name == "test_rm"
    assert args.plugin == [FAKE] and tuple(args.plugin_selection["requested"]) == (FAKE,)
    assert "plan of this run" in result.stdout


def test_arguments_file(miles_cli, run_flags, tmp_path):
    flags = tmp_path / "run.args"
    flags.write_text("# all flags of the run\n" + " ".join(f"'{word}'" for word in run_flags) + "\n")
    result = miles_cli("-p", FAKE, "train", f"@{flags}", "--global-batch-size", "8", "--dry-run")
    # The file's --num-steps-per-rollout 2 and the later --global-batch-size 8: 8 × 4 = 32 ≠ 8 × 2.
    assert result.exit_code == 2 and "--global-batch-size 8 × --num-steps-per-rollout 2 = 16" in result.stderr
    result = miles_cli("-p", FAKE, "train", f"@{flags}", "--global-batch-size", "16", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "global_batch_size 16 (passed), num_steps_per_rollout 2 (passed)" in result.stdout


HELLO_PLUGIN = """
from miles_core import hookimpl

@hookimpl
def miles_register_commands(subparsers):
    hello = subparsers.add_parser("hello", help="Say hello")
    hello.add_argument("--name", default="world")

    def run(args):
        print(f"hello {args.name} ({len(args.plugin_manager.plugin_infos)} plugins, -p {args.plugin})")
        return 5

    hello.set_defaults(func=run)
"""


def test_plugin_registered_subcommand(miles_cli, tmp_path, monkeypatch):
    (tmp_path / "miles_cli_hello_plugin.py").write_text(HELLO_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = miles_cli("hello", "--name", "miles", "-p", "miles_cli_hello_plugin")
    assert result.exit_code == 5, result.stderr
    assert result.stdout.startswith("hello miles (") and "-p ['miles_cli_hello_plugin']" in result.stdout
    assert "hello" in miles_cli("-p", "miles_cli_hello_plugin", "--help").stdout
