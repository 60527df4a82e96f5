"""Weight-sync tests reuse the FSDP test harness (spawned gloo ranks, flag namespaces, fixed batches)."""

from __future__ import annotations

import sys
from pathlib import Path

_HARNESS_DIR = str(Path(__file__).resolve().parent.parent / "fsdp")
if _HARNESS_DIR not in sys.path:
    sys.path.insert(0, _HARNESS_DIR)
