"""Metrics out of a run: a progress line with ETA, TensorBoard (scalars, the config as text, image summaries),
`metrics.jsonl`, and a loss-curve PNG."""

from __future__ import annotations

import json
import os
import time

import matplotlib
import numpy as np
from tensorboardX import SummaryWriter

from cemjax.common.files import atomic_write
from cemjax.common.progress import Progress

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the display-free backend)


class MetricWriter:
    """Writes on the lead process only. `write(step, {"loss": ..})` → a progress line (with elapsed time and
    ETA), TensorBoard scalars under `train/` (a name with a slash, `probe/knn`, is its own tag), one JSON line
    in `metrics.jsonl`."""

    def __init__(self, workdir: str, *, total_steps: int, start_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.total_steps = total_steps
        self.jsonl = os.path.join(workdir, "metrics.jsonl")
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard")) if enabled else None
        self._last = (time.perf_counter(), None)
        self.progress = Progress(total_steps, done=start_step, enabled=False)

    def write(self, step: int, scalars: dict[str, float], *, images_per_step: int | None = None) -> None:
        """`images_per_step` adds `images_per_s` since the previous write that had it (None: no rate, e.g. the
        probe of the initial state)."""
        if images_per_step is not None:
            now, last_step = time.perf_counter(), self._last[1]
            if last_step is not None and step > last_step:
                scalars = {**scalars, "images_per_s": images_per_step * (step - last_step) / (now - self._last[0])}
            self._last = (now, step)
        self.progress.update(step)
        if not self.enabled:
            return
        for name, value in scalars.items():
            self._tb.add_scalar(name if "/" in name else f"train/{name}", value, step)
        self._tb.flush()
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        shown = "  ".join(f"{k} {v:.4g}" for k, v in scalars.items())
        print(f"step {step:>7}/{self.total_steps}  {shown}  | {self.progress.status()}", flush=True)

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """TensorBoard scalars under their own names (e.g. `test/iou`), without the progress line."""
        if self.enabled:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()

    def write_config(self, config_dict: dict) -> None:
        """The run's config as a TensorBoard text summary (JSON, shown verbatim)."""
        if self.enabled:
            text = json.dumps(config_dict, indent=2, default=str)
            self._tb.add_text("config", "    " + text.replace("\n", "\n    "), 0)
            self._tb.flush()

    def write_images(self, tag: str, images: np.ndarray, step: int) -> None:
        """Image summaries: uint8 [N, H, W] gray or [N, H, W, 3] RGB."""
        if self.enabled and len(images):
            images = np.asarray(images)
            self._tb.add_images(tag, images if images.ndim == 4 else images[..., None], step, dataformats="NHWC")
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
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path
