"""A verifier worker: a separate process that runs math-verify on one request at a time.

Started by :mod:`miles_rm_math.verifier_pool` as ``python -m miles_rm_math._worker`` (a fresh
interpreter, so nothing of the parent — its threads, event loop, ``__main__`` or Ray state — is
copied or re-imported). It speaks JSON lines: one request per line on stdin, one reply per line on
the protocol descriptor (the original stdout; fd 1 is pointed at stderr so that a stray ``print``
in a library cannot corrupt the protocol).

- first it replies ``{"ready": true, "pid": ...}`` once math-verify is imported and warmed up;
- request ``{"id", "golds": [str], "answer": str, "timeout": float}`` →
  ``{"id", "equivalent": bool}``, ``{"id", "timeout": true}`` or ``{"id", "error": str}``.

A request is interrupted after ``timeout`` seconds by ``SIGALRM`` (this is the worker's main thread,
where signals work), so pure-Python hangs in sympy end without losing the warm worker. The parent
kills the worker if it does not answer shortly after, which covers native code that signals cannot
interrupt. With ``--memory-limit-mb`` the address space is capped, so a runaway expression raises
``MemoryError`` here instead of exhausting the host. The worker exits when stdin closes (the parent
went away).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Any, TextIO


class _RequestTimeout(BaseException):
    """Raised by SIGALRM. A BaseException so math-verify's ``except Exception`` cannot swallow it."""


class _SwallowedErrors(logging.Handler):
    """Notices the MemoryErrors that math-verify catches and logs at debug level (it returns False)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.memory_errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None and issubclass(record.exc_info[0], MemoryError):
            self.memory_errors += 1


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _on_alarm(signum: int, frame: Any) -> None:
    raise _RequestTimeout()


def _handle(request: dict[str, Any], swallowed: _SwallowedErrors, memory_limit_mb: int) -> dict[str, Any]:
    from miles_rm_math.equivalence import answers_equivalent

    request_id = request.get("id")
    timeout = float(request.get("timeout") or 0)
    swallowed.memory_errors = 0
    try:
        if timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            equivalent = answers_equivalent(list(request["golds"]), str(request["answer"]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _RequestTimeout:
        return {"id": request_id, "timeout": True}
    except MemoryError:
        return {"id": request_id, "error": f"out of memory (worker limit {memory_limit_mb} MB)"}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs and counts it
        return {"id": request_id, "error": f"{type(exc).__name__}: {exc}"[:500]}
    if swallowed.memory_errors:
        return {"id": request_id, "error": f"out of memory (worker limit {memory_limit_mb} MB)"}
    return {"id": request_id, "equivalent": bool(equivalent)}


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m miles_rm_math._worker", description=__doc__.split("\n")[0])
    parser.add_argument("--memory-limit-mb", type=int, default=0)
    options = parser.parse_args(argv)

    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    _limit_memory(options.memory_limit_mb)

    swallowed = _SwallowedErrors()
    for name in ("math_verify", "latex2sympy2_extended"):
        library_logger = logging.getLogger(name)
        library_logger.setLevel(logging.DEBUG)
        library_logger.propagate = False  # its per-answer debug and "timeout disabled" warnings stay quiet
        library_logger.addHandler(swallowed)
    signal.signal(signal.SIGALRM, _on_alarm)

    from miles_rm_math.equivalence import answers_equivalent

    answers_equivalent(["1"], "1")  # import and warm up sympy before declaring ourselves ready
    _send(channel, {"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        if line.strip():
            _send(channel, _handle(json.loads(line), swallowed, options.memory_limit_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
