"""``miles plot RUN_DIR``: one PNG with reward, loss, KL, entropy and timing curves from ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from miles_core.logging.jsonl_logger import read_metrics

# (title, [(metric key, legend label)]) per panel; panels with no data say so instead of vanishing.
PANELS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Reward", (("rollout/raw_reward", "raw reward (trained groups)"),
                ("rollout/generated/raw_reward", "raw reward (all generated)"))),
    ("Loss", (("train/loss", "loss"), ("train/pg_loss", "pg_loss"))),
    ("KL", (("train/kl_loss", "kl_loss"), ("train/ppo_kl", "ppo_kl"))),
    ("Entropy", (("train/entropy_loss", "entropy"),)),
    ("Time per rollout (s)", (("perf/rollout_time", "rollout"), ("perf/train_time", "train"),
                              ("perf/update_weights_time", "weight sync"))),
)


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)):
            xs.append(int(row["rollout_id"]))
            ys.append(float(value))
    return xs, ys


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the curves of ``run_dir`` and return the PNG's path (default ``RUN_DIR/curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    out_path = Path(out) if out else Path(run_dir) / "curves.png"
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    for ax, (title, keys) in zip(axes, PANELS):
        drawn = False
        for key, label in keys:
            xs, ys = series(rows, key)
            if xs:
                ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=label)
                drawn = True
        ax.set_title(title)
        ax.set_xlabel("rollout")
        if drawn:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.grid(alpha=0.3)
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def run_plot_command(args: Any) -> int:
    path = plot_run(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0
