"""Every answer check is bounded in time, works from any thread or event loop, and never fails silently."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from miles_rm_math.verifier_pool import HARD_GRACE_S, VerifierStartupError

from miles_core import Sample
from miles_rm_math import REWARD_TYPES, VerifierOptions, VerifierPool, score_sample

# sympy needs far more than a second for this power; math-verify's own signal timeout cannot run in a thread.
PATHOLOGICAL = "10^{10^{10}}"


@pytest.fixture(scope="module")
def short_timeout_args() -> argparse.Namespace:
    return argparse.Namespace(math_verify_timeout=0.5, math_verify_workers=1, math_verify_memory_limit_mb=2048)


def test_timeout_scores_as_wrong_and_is_recorded(rm_math_manager, short_timeout_args, caplog):
    spec = rm_math_manager.get("reward_models", "math")
    sample = Sample(index=3, response=f"so \\boxed{{{PATHOLOGICAL}}}", label="5")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="miles_rm_math"):
        reward = asyncio.run(spec.fn(short_timeout_args, sample))
    assert reward == 0
    assert time.monotonic() - started < 0.5 + HARD_GRACE_S + 2.0  # start-up of the worker included
    assert sample.metadata["math_verify"] == "timeout"
    assert "0.5 s" in sample.metadata["math_verify_detail"] and "--math-verify-timeout" in sample.metadata["math_verify_detail"]
    assert any("scored as a wrong answer" in r.getMessage() and "sample 3" in r.getMessage() for r in caplog.records)


def test_dapo_timeout_is_never_better_than_a_wrong_answer(rm_math_manager, short_timeout_args):
    sample = Sample(index=0, response=f"Answer: {PATHOLOGICAL}", label="5")
    reward = asyncio.run(rm_math_manager.get("reward_models", "dapo").fn(short_timeout_args, sample))
    assert reward["score"] == -1.0 and reward["acc"] is False
    assert sample.metadata["math_verify"] == "timeout"


def test_worker_survives_a_timeout():
    pool = VerifierPool(VerifierOptions(timeout_s=0.5, num_workers=1))
    try:
        assert pool.check(["5"], PATHOLOGICAL).status == "timeout"
        assert pool.check(["5"], "\\frac{10}{2}").status == "equivalent"
        stats = pool.stats()
        assert stats["timeouts"] == 1 and stats["workers_started"] == 1  # interrupted itself, stayed warm
    finally:
        pool.close()


HANGING_WORKER = textwrap.dedent("""
    import json, os, signal, sys, time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # like native code that no signal interrupts
    open(sys.argv[1], "a").write(f"{os.getpid()}\\n")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        time.sleep(3600)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stuck_worker_is_killed_and_replaced(tmp_path: Path):
    pids_file = tmp_path / "pids"
    pool = VerifierPool(VerifierOptions(timeout_s=0.3, num_workers=1), hard_grace_s=0.2,
                        worker_command=[sys.executable, "-c", HANGING_WORKER, str(pids_file)])
    try:
        started = time.monotonic()
        verdict = pool.check(["5"], "5 + 0")
        elapsed = time.monotonic() - started
        assert verdict.status == "timeout" and "killed and replaced" in verdict.detail
        assert 0.5 <= elapsed < 0.5 + 2.0
        first_pid = int(pids_file.read_text().split()[0])
        assert not _alive(first_pid)
        assert pool.check(["5"], "6 - 1").status == "timeout"  # the replacement answers (here: hangs) in turn
        assert pool.stats() == {"checks": 2, "timeouts": 2, "errors": 0, "workers_started": 3, "workers_replaced": 2}
    finally:
        pool.close()
    for pid in map(int, pids_file.read_text().split()):
        assert not _alive(pid)


CRASHING_WORKER = textwrap.dedent("""
    import json, sys
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    sys.exit(9)
""")


def test_worker_crash_is_an_error_verdict_and_the_worker_is_replaced():
    pool = VerifierPool(VerifierOptions(timeout_s=5.0, num_workers=1),
                        worker_command=[sys.executable, "-c", CRASHING_WORKER])
    try:
        first = pool.check(["5"], "6 - 1")
        assert first.status == "error" and "code 9" in first.detail and first.failed
        assert pool.check(["5"], "6 - 1").status == "error"
        assert pool.stats()["workers_started"] == 2
    finally:
        pool.close()


def test_a_worker_that_cannot_start_is_a_clear_error():
    pool = VerifierPool(VerifierOptions(num_workers=1), worker_command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(VerifierStartupError, match="exited with code 3 while starting"):
        pool.check(["5"], "6 - 1")
    pool.close()


def test_worker_caps_its_address_space():
    worker = subprocess.Popen([sys.executable, "-m", "miles_rm_math._worker", "--memory-limit-mb", "512"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(worker.stdout.readline())
        limits = Path(f"/proc/{ready['pid']}/limits")
        if limits.exists():
            line = next(x for x in limits.read_text().splitlines() if x.startswith("Max address space"))
            assert line.split()[3] == str(512 * 1024 * 1024)
        worker.stdin.write(json.dumps({"id": 1, "golds": ["2"], "answer": "1+1", "timeout": 5}) + "\n")
        worker.stdin.flush()
        assert json.loads(worker.stdout.readline()) == {"id": 1, "equivalent": True}
    finally:
        worker.stdin.close()
        assert worker.wait(timeout=10) == 0  # exits when its parent closes stdin


def test_scoring_from_non_main_threads(math_args):
    cases = [(f"\\boxed{{\\frac{{{n}}}{{2}}}}", n / 2, 1) for n in range(1, 9)] + [("\\boxed{7}", 8, 0)]
    results: dict[int, int] = {}

    def score(i: int, response: str, label, _expected: int) -> None:
        results[i] = score_sample(math_args, Sample(index=i, response=response, label=label), "math")

    thread = threading.Thread(target=score, args=(0, *cases[0]))
    thread.start()
    thread.join()
    with ThreadPoolExecutor(max_workers=6) as executor:
        list(executor.map(lambda item: score(item[0], *item[1]), enumerate(cases)))
    assert results == {i: expected for i, (_, _, expected) in enumerate(cases)}
    assert threading.current_thread() is threading.main_thread()


def test_scoring_inside_an_event_loop_keeps_the_loop_running(rm_math_manager, short_timeout_args, math_args):
    math_fn = rm_math_manager.get("reward_models", "math").fn
    dapo_fn = rm_math_manager.get("reward_models", "dapo").fn

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            for _ in range(10):
                await asyncio.sleep(0.01)
                ticks += 1

        slow = asyncio.create_task(math_fn(short_timeout_args, Sample(response=f"\\boxed{{{PATHOLOGICAL}}}", label="1")))
        fast = [math_fn(math_args, Sample(response=f"\\boxed{{{n}/4}}", label=n / 4)) for n in range(1, 13)]
        dapo = [dapo_fn(math_args, Sample(response=f"Answer: {n}", label=str(n + n % 2))) for n in range(6)]
        await ticker()
        assert ticks == 10 and not slow.done()  # the loop ran while math-verify was busy with the slow check
        fast_results = await asyncio.gather(*fast)
        dapo_results = await asyncio.gather(*dapo)
        return fast_results, dapo_results, await slow

    fast_results, dapo_results, slow_result = asyncio.run(main())
    assert fast_results == [1] * 12
    assert [r["score"] for r in dapo_results] == [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    assert slow_result == 0


def test_after_rollout_reports_failed_checks(rm_math_manager, caplog):
    ok = Sample(index=0, reward=1)
    timed_out = Sample(index=1, reward=0, metadata={"math_verify": "timeout", "math_verify_detail": "..."})
    with caplog.at_level(logging.WARNING, logger="miles_rm_math"):
        rm_math_manager.hook.miles_after_rollout(args=argparse.Namespace(), rollout_id=7, samples=[[ok, timed_out]])
    [record] = [r for r in caplog.records if r.name.startswith("miles_rm_math")]
    assert "rollout 7: 1 timeout of 2 samples" in record.getMessage()


def test_reward_types_table_is_complete():
    assert set(REWARD_TYPES) == {"math", "dapo", "deepscaler", "gemma_math",
                                 "boxed_math", "boxed_dapo", "boxed_deepscaler", "boxed_gemma_math"}
