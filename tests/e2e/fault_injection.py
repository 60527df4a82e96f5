"""A generate function that crashes one engine of its own run mid-rollout (fault-tolerance drills).

Used as ``--custom-generate-function-path fault_injection:generate``: it is the built-in
``single_turn`` generate, except that when sample ``$MILES_E2E_KILL_AT_SAMPLE`` starts it SIGKILLs the
oldest engine server of the run (found by the run's ``MILES_E2E_RUN_TAG``), while the other requests
of the rollout are in flight.
"""

from __future__ import annotations

import logging
import os
import signal

from e2e_support import TAG_VAR, tagged_processes
from miles_core.rollout.single_turn import generate as single_turn_generate

logger = logging.getLogger("miles.e2e.fault_injection")
_killed: list[int] = []


def kill_oldest_engine() -> int:
    engines = sorted((p for p in tagged_processes(os.environ[TAG_VAR]) if p.module == "miles_core.engines.embedded"),
                     key=lambda p: p.pid)
    victim = engines[0]
    os.kill(victim.pid, signal.SIGKILL)
    return victim.pid


async def generate(fn_input):
    kill_at = int(os.environ.get("MILES_E2E_KILL_AT_SAMPLE", "-1"))
    if fn_input.sample.index == kill_at and not _killed:
        _killed.append(kill_oldest_engine())
        logger.warning("fault injection: killed engine server pid %d at sample %d", _killed[0], kill_at)
    return await single_turn_generate(fn_input)
