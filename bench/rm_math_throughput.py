"""How many samples per second the miles-rm-math rewards score on one CPU core.

For each reward type, 10,000 responses (seeded) are scored one after the other, as one rollout
thread would, with the whole process tree pinned to one core (``sched_setaffinity``; the worker
process inherits it) and one math-verify worker. The answers are a mix a GRPO rollout sees:

- 40 % the label written the same way (settled by the string fast path, no math-verify call);
- 30 % an equivalent answer in another form (``0.5`` for ``\\frac{1}{2}``, ``1,000`` for ``1000``,
  ``\\sqrt{18}`` for ``3\\sqrt{2}``, units, intervals, polynomials);

and the kinds of answer are weighted as in MATH-style data (``KIND_WEIGHTS``: 45 % integers, 20 %
fractions, then units, radicals, polynomials, percentages, intervals). Polynomials and intervals cost
math-verify 10-50 ms each; integers and fractions 2-5 ms.
- 25 % a wrong answer; 5 % no answer at all.

Values are drawn from a wide range so that few pairs repeat (the verdict cache helps only with true
repeats). A last row scores the same "math" responses with math-verify called in this process, without any
time bound: the difference to the "math" row is what the worker round trip costs.

Run: ``python bench/rm_math_throughput.py [--samples 10000] [--core 0]``
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from dataclasses import dataclass

from miles_rm_math.answer_check import check_answer, clear_cache, reference_answers
from miles_rm_math.extraction import last_boxed_answer
from miles_rm_math.verifier_pool import Verdict, close_pools

from miles_core import Sample
from miles_rm_math import REWARD_TYPES, VerifierOptions, get_pool, score_sample

RESPONSE_TEMPLATES = {
    "math": "Let me work through it step by step. ... So the result is $\\boxed{{{answer}}}$.",
    "deepscaler": "<think>Let me try a few cases first ...</think>The final answer is \\boxed{{{answer}}}.",
    "gemma_math": "<|channel>thought\nworking ...<channel|>Final answer: \\boxed{{{answer}}}",
    "dapo": "Step 1: ... Step 2: ... Therefore\nAnswer: {answer}",
}
NO_ANSWER = "I could not finish the computation in time."


@dataclass(frozen=True)
class Case:
    label: str
    answer: str | None  # None: the response gives no answer


#: Kinds of answers and their shares, roughly those of MATH-style datasets (integers dominate).
KIND_WEIGHTS = {"integer": 45, "fraction": 20, "units": 10, "radical": 8, "percent": 5, "polynomial": 7, "interval": 5}


def _forms(rng: random.Random) -> tuple[str, str, str]:
    """(label, an equivalent answer in another form, a wrong answer) of one kind drawn by ``KIND_WEIGHTS``."""
    kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    if kind == "integer":
        n = rng.randrange(1000, 10**7)
        return str(n), f"{n:,}", str(n + rng.randrange(1, 9))
    if kind == "fraction":
        q = rng.choice([2, 4, 5, 8, 10, 16, 20, 25])
        p = rng.randrange(1, 50 * q)
        while math.gcd(p, q) != 1:
            p += 1
        return f"\\frac{{{p}}}{{{q}}}", repr(p / q), f"\\frac{{{p + 1}}}{{{q}}}"
    if kind == "units":
        n = rng.randrange(1, 10**5)
        return str(n), f"{n} \\text{{ cm}}", f"{n + 1} \\text{{ cm}}"
    if kind == "radical":
        k, m = rng.randrange(2, 40), rng.choice([2, 3, 5, 6, 7, 10, 11])
        return f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}", f"{k + 1}\\sqrt{{{m}}}"
    if kind == "percent":
        n = rng.randrange(1, 100)
        return f"{n}\\%", f"{n}\\%", f"{n + 1}\\%"
    if kind == "polynomial":
        a = rng.randrange(1, 60)
        return f"(x+{a})^2", f"x^2+{2 * a}x+{a * a}", f"x^2+{a}x+{a * a}"
    a, b = sorted(rng.sample(range(-500, 500), 2))
    return f"[{a}, {b})", f"\\left[{a},{b}\\right)", f"({a}, {b}]"


def make_cases(samples: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for _ in range(samples):
        label, equivalent, wrong = _forms(rng)
        roll = rng.random()
        if roll < 0.40:
            answer: str | None = label
        elif roll < 0.70:
            answer = equivalent
        elif roll < 0.95:
            answer = wrong
        else:
            answer = None
        cases.append(Case(label, answer))
    return cases


def response_for(rm_type: str, case: Case) -> str:
    if case.answer is None:
        return NO_ANSWER
    base = rm_type.removeprefix("boxed_")
    template = RESPONSE_TEMPLATES["math"] if rm_type.startswith("boxed_") else RESPONSE_TEMPLATES[base]
    return template.format(answer=case.answer)


def bench_reward(rm_type: str, cases: list[Case], args: argparse.Namespace) -> dict[str, float]:
    clear_cache()
    close_pools()  # a fresh worker per type: no sympy cache carried over from the previous type
    pool = get_pool(VerifierOptions(timeout_s=args.math_verify_timeout, num_workers=1))
    pool.warm_up()
    checks_before = pool.stats()["checks"]
    samples = [Sample(index=i, response=response_for(rm_type, c), label=c.label) for i, c in enumerate(cases)]
    correct = 0
    started = time.perf_counter()
    for sample in samples:
        reward = score_sample(args, sample, rm_type)
        correct += (reward["acc"] if isinstance(reward, dict) else reward) == 1
    elapsed = time.perf_counter() - started
    timeouts = sum(1 for s in samples if s.metadata.get("math_verify"))
    return {"seconds": elapsed, "checked": pool.stats()["checks"] - checks_before, "correct": correct,
            "timeouts": timeouts}


class _InProcessChecker:
    """Stands in for the pool: math-verify in this process, without any time bound (the baseline)."""

    def __init__(self) -> None:
        self.calls = 0

    def check(self, golds: list[str], answer: str) -> Verdict:
        from miles_rm_math.equivalence import answers_equivalent

        self.calls += 1
        return Verdict("equivalent" if answers_equivalent(golds, answer) else "different")


def bench_in_process(cases: list[Case]) -> dict[str, float]:
    """The "math" reward with the same fast path and cache, but math-verify called in this process."""
    import logging

    from miles_rm_math.equivalence import answers_equivalent

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    answers_equivalent(["1"], "1")  # import and warm up outside the timing
    clear_cache()
    checker = _InProcessChecker()
    responses = [response_for("math", c) for c in cases]
    correct = 0
    started = time.perf_counter()
    for case, response in zip(cases, responses, strict=True):
        answer = last_boxed_answer(response)
        golds = reference_answers(case.label)
        verdict = check_answer(golds, answer, checker)  # type: ignore[arg-type]
        correct += verdict.correct
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "checked": checker.calls, "correct": correct, "timeouts": 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--core", type=int, default=None, help="CPU core to pin to (default: the first allowed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--types", default=",".join(REWARD_TYPES), help="comma-separated reward names")
    parser.add_argument("--math-verify-timeout", type=float, default=5.0)
    args = parser.parse_args()
    args.math_verify_workers = 1
    args.math_verify_memory_limit_mb = 2048

    core = args.core if args.core is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})  # inherited by the worker process started below
    os.environ["OMP_NUM_THREADS"] = "1"

    cases = make_cases(args.samples, args.seed)
    print(f"miles-rm-math throughput: {args.samples} samples per reward type, one core (cpu {core}), "
          f"one math-verify worker, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work slows every row)")
    header = f"{'reward type':<42} {'samples/s':>10} {'seconds':>8} {'math-verify calls':>18} {'correct':>8} {'timeouts':>9}"
    print(header)
    print("-" * len(header))
    rows = [(name, lambda name=name: bench_reward(name, cases, args)) for name in args.types.split(",")]
    rows.append(("math, in-process math-verify (unbounded)", lambda: bench_in_process(cases)))
    for name, run in rows:
        result = run()
        print(f"{name:<42} {len(cases) / result['seconds']:>10.0f} {result['seconds']:>8.2f} "
              f"{result['checked']:>18} {result['correct']:>8} {result['timeouts']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
