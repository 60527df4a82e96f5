"""Starting and stopping Ray for a run.

``--ray-address`` joins an existing cluster; otherwise a local one is started with the CPUs and GPUs of
this machine. Ray's session files go to a temporary directory (never the home directory), and worker
logs are forwarded to the driver so a plugin's print or traceback shows up where the user looks.
Ray's session files go under ``$RAY_TMPDIR`` when it is short enough for Ray's socket paths.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

# Environment every Ray worker of a run gets: hermetic caches and no token-auth file under $HOME.
_WORKER_ENV_DEFAULTS = {"RAY_AUTH_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
_FORWARDED_ENV_PREFIXES = ("HF_", "WANDB_", "SGLANG_", "MILES_", "XDG_CACHE_HOME", "TRITON_", "CUDA_", "NCCL_",
                           "TORCH", "OMP_NUM_THREADS", "MPLCONFIGDIR", "PYTHONPATH")


# Ray's socket paths (<temp dir>/session_<date>_<pid>/sockets/plasma_store) must stay under 108 bytes.
_RAY_PATH_OVERHEAD = 85
_SOCKET_PATH_LIMIT = 107


def _temp_root() -> str | None:
    """``$RAY_TMPDIR`` when its socket paths fit, else the system temp dir."""
    root = os.environ.get("RAY_TMPDIR")
    if root and len(root) + _RAY_PATH_OVERHEAD <= _SOCKET_PATH_LIMIT:
        os.makedirs(root, exist_ok=True)
        return root
    return None


def worker_env() -> dict[str, str]:
    env = dict(_WORKER_ENV_DEFAULTS)
    env.update({k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV_PREFIXES)})
    return env


def init_ray(args: Any) -> None:
    """Start (or join) Ray for this run."""
    for key, value in _WORKER_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return
    runtime_env = {"env_vars": worker_env()}
    if getattr(args, "ray_address", None):
        ray.init(address=args.ray_address, runtime_env=runtime_env, log_to_driver=True)
        return
    temp_dir = tempfile.mkdtemp(prefix="miles-ray-", dir=_temp_root())
    num_cpus = max(os.cpu_count() or 1, 1)
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _temp_dir=temp_dir,
        runtime_env=runtime_env,
        log_to_driver=True,
        logging_level="WARNING",
    )


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
