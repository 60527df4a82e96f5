"""Weight sync from the trainer to the rollout engines (tensor, distributed and disk modes).

See :mod:`miles_core.training.weight_sync.updater` for the session and the mode choice.
"""

from miles_core.training.weight_sync.engine_http import WeightSyncError
from miles_core.training.weight_sync.updater import (
    TRANSFER_MODES,
    WeightUpdater,
    describe_engines,
    resolve_transfer_mode,
)

__all__ = ["TRANSFER_MODES", "WeightSyncError", "WeightUpdater", "describe_engines", "resolve_transfer_mode"]
