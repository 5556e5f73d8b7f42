"""Orthoplane (and stack) inference of a synthetic uint8 volume through a real cemjax UNet: throughput and
host memory. Prints one Markdown table.

  python experiments/benchmarks/orthoplane_inference.py [--size 96] [--depth 18] [--classes 1] [--batch 8]
  python experiments/benchmarks/orthoplane_inference.py --size 512 --depth 50      # on a GPU

Memory: a sampler thread reads the resident set size (/proc/self/statm) every 2 ms; "peak RSS Δ" is the highest
sample during one `predict_volume` call minus the RSS just before it (ru_maxrss Δ: the same from the kernel's
high-water mark, which only moves once the old peak is exceeded). The first row is a warm-up stack pass: it
includes jit compilation and the allocator's one-off growth (~30 MiB on CPU, not volume-dependent); the rows after
it are steady state. On CPU the Δ includes XLA's buffers for one batch, which do not grow with the volume; on a
GPU they live in device memory. Goal: peak Δ ≤ 3 × volume bytes + model bytes (input volume, output, a uint8
accumulator per class, no float copy of the volume); "model" counts all UNet state (parameters + BN statistics).
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cemjax.models import Unet
from cemjax.seg.inference import predict_volume

PAGE = os.sysconf("SC_PAGE_SIZE")
MEAN, STD = 0.58, 0.15  # any normalisation will do for timing


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRss:
    """Context manager sampling RSS in a thread: .base (bytes at entry), .peak (max sample, bytes)."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def synthetic_volume(size: int, seed: int = 0) -> np.ndarray:
    """uint8 [size]³: smooth blobs plus noise, built slice by slice (no float copy of the whole volume)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (12, 3))
    radii = rng.uniform(size / 16, size / 6, 12)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    vol = np.empty((size, size, size), np.uint8)
    for z in range(size):
        plane = np.full((size, size), 90.0, np.float32)
        for (cz, cy, cx), r in zip(centres, radii, strict=True):
            plane += 110.0 * ((z - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
        plane += rng.normal(0, 12, plane.shape).astype(np.float32)
        vol[z] = np.clip(plane, 0, 255)
    return vol


def make_predict_fn(depth: int, classes: int):
    """Jitted eval-mode UNet forward: float32 [B, H, W, 1] in [0, 1] → logits [B, H, W, classes]; model bytes."""
    model = Unet(f"resnet{depth}", in_channels=1, classes=classes, rngs=nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)
    model_bytes = sum(x.nbytes for x in jax.tree.leaves(state))

    @jax.jit
    def forward(state, x):
        return nnx.merge(graphdef, state)((x - MEAN) / STD)

    return (lambda x: forward(state, jnp.asarray(x))), model_bytes


def run(predict_fn, volume: np.ndarray, classes: int, mode: str, batch: int) -> dict:
    """One measured predict_volume call: seconds, RSS peak increase (sampled and ru_maxrss), foreground share."""
    with PeakRss() as mem:
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        start = time.perf_counter()
        labels = predict_volume(predict_fn, volume, classes, mode=mode, batch_size=batch)
        seconds = time.perf_counter() - start
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": seconds,
        "peak_delta": mem.peak - mem.base,
        "maxrss_delta": maxrss_after - maxrss_before,
        "foreground": float(np.count_nonzero(labels)) / labels.size,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=96, help="volume edge (voxels); the volume is size³ uint8")
    ap.add_argument("--depth", type=int, default=18, help="ResNet encoder depth (18, 34, 50, ...)")
    ap.add_argument("--classes", type=int, default=1, help="output channels (1 = binary)")
    ap.add_argument("--batch", type=int, default=8, help="slices per forward call")
    ap.add_argument("--modes", default="stack,orthoplane", help="comma-separated modes, in run order")
    args = ap.parse_args()

    predict_fn, model_bytes = make_predict_fn(args.depth, args.classes)
    volume = synthetic_volume(args.size)
    vol_bytes = volume.nbytes
    budget = 3 * vol_bytes + model_bytes
    mib = 2.0**20
    rows = []
    runs = [("stack", "stack (cold: compile + first pass)")] + [(m, m) for m in args.modes.split(",")]
    for mode, label in runs:
        r = run(predict_fn, volume, args.classes, mode, args.batch)
        ratio = r["peak_delta"] / budget
        rows.append(
            f"| {label} | {'×'.join(map(str, volume.shape))} | {volume.size / r['seconds']:,.0f} | {r['seconds']:.1f} "
            f"| {r['peak_delta'] / mib:.1f} | {r['maxrss_delta'] / mib:.1f} | {vol_bytes / mib:.1f} "
            f"| {model_bytes / mib:.1f} | {ratio:.2f} | {'yes' if ratio <= 1.0 else 'no'} |"
        )
    device = jax.devices()[0]
    print(
        f"\nUNet-ResNet{args.depth}, {args.classes} class(es), batch {args.batch}, {device.platform} "
        f"({device.device_kind}), {os.cpu_count()} CPUs visible"
    )
    print(
        "| mode | volume | voxels/s | s | peak RSS Δ MiB | ru_maxrss Δ MiB | volume MiB | model MiB "
        "| peak / (3·vol + model) | ≤ 1.0 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
