"""Metrics out of a run: a progress line, TensorBoard scalars, `metrics.jsonl`, and a loss-curve PNG."""

from __future__ import annotations

import json
import os
import time


class MetricWriter:
    """Writes on process 0 only. `write(step, {"loss": ..})` → stdout line, TensorBoard event, JSON line."""

    def __init__(self, workdir: str, *, total_steps: int, enabled: bool = True):
        self.enabled = enabled
        self.total_steps = total_steps
        self.jsonl = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        self._last = (time.perf_counter(), None)
        if enabled:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, scalars: dict[str, float], *, images_per_step: int) -> None:
        now, last_step = time.perf_counter(), self._last[1]
        if last_step is not None and step > last_step:
            scalars = {**scalars, "images_per_s": images_per_step * (step - last_step) / (now - self._last[0])}
        self._last = (now, step)
        if not self.enabled:
            return
        for name, value in scalars.items():
            self._tb.add_scalar(f"train/{name}", value, step)
        self._tb.flush()
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        shown = "  ".join(f"{k} {v:.4g}" for k, v in scalars.items())
        print(f"step {step:>7}/{self.total_steps}  {shown}", flush=True)

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """TensorBoard scalars under their own names (e.g. `test/iou`), without the progress line."""
        if self.enabled:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    latest = {}
    for row in rows:  # after a resume, later lines for the same step win
        latest[row["step"]] = row
    return [latest[s] for s in sorted(latest)]


def plot_curves(workdir: str, keys=("loss", "top1", "lr"), filename: str = "loss_curve.png") -> str | None:
    """One panel per metric against step; returns the PNG path (None without metrics)."""
    rows = read_metrics(workdir)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(workdir, filename)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
