"""miles-filters-dapo: DAPO's dynamic sampling, overlong reward shaping and overlong filtering for Miles.

Registers the filters ``nonzero_std`` (alias ``check_reward_nonzero_std``), ``mask_truncated`` and
``freshest_first``, and shapes rewards with DAPO's soft overlong punishment when
``--overlong-buffer-len`` is set.
"""

from miles_filters_dapo.freshness import freshest_first
from miles_filters_dapo.nonzero_std import check_reward_nonzero_std
from miles_filters_dapo.overlong import apply_overlong_penalty, soft_overlong_punishment
from miles_filters_dapo.truncation import mask_truncated

__all__ = [
    "apply_overlong_penalty",
    "check_reward_nonzero_std",
    "freshest_first",
    "mask_truncated",
    "soft_overlong_punishment",
]
