"""Where a CPU training step's time goes: forward + backward of single layers at ResNet / UNet shapes, timed as
XLA's own kernels (`gradient_mode("native")`), as cemjax runs them (`cemjax.models.cpu_grads`) and as PyTorch
eager (oneDNN) in the same run. Medians of interleaved rounds (the shared machine is noisy). Prints one table.

  python experiments/benchmarks/cpu_conv_ops.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch

from cemjax.models.cpu_grads import _NHWC, conv_general_dilated, gradient_mode, max_pool_3x3_s2

# (batch, size, C_in, C_out, kernel, stride); ResNet-50 at 224 px (batch 16) and UNet decoder stages (batch 8)
CONVS = [
    (16, 224, 1, 64, 7, 2),
    (16, 56, 64, 64, 3, 1),
    (16, 56, 64, 256, 1, 1),
    (16, 56, 256, 64, 1, 1),
    (16, 56, 128, 128, 3, 2),
    (16, 14, 256, 256, 3, 1),
    (16, 7, 512, 512, 3, 1),
    (8, 32, 192, 64, 3, 1),
    (8, 128, 32, 16, 3, 1),
]
POOL = (16, 112, 64)


def _jax_conv(batch, size, c_in, c_out, k, s, mode) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, size, size, c_in), np.float32))
    w = jnp.asarray(rng.random((k, k, c_in, c_out), np.float32))
    pad = ((k // 2, k // 2), (k // 2, k // 2))

    def loss(x, w):
        return jnp.sum(conv_general_dilated(x, w, (s, s), pad, dimension_numbers=_NHWC) ** 2)

    with gradient_mode(mode):
        step = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile()
    return lambda: jax.block_until_ready(step(x, w))


def _torch_conv(batch, size, c_in, c_out, k, s) -> Callable[[], None]:
    x = torch.rand(batch, c_in, size, size, requires_grad=True)
    conv = torch.nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
    return lambda: (conv(x) ** 2).sum().backward()


def _jax_pool(batch, size, channels, mode) -> Callable[[], None]:
    x = jnp.asarray(np.maximum(np.random.default_rng(0).standard_normal((batch, size, size, channels)), 0), jnp.float32)
    with gradient_mode(mode):
        step = jax.jit(jax.grad(lambda x: jnp.sum(max_pool_3x3_s2(x) ** 2))).lower(x).compile()
    return lambda: jax.block_until_ready(step(x))


def _torch_pool(batch, size, channels) -> Callable[[], None]:
    x = torch.rand(batch, channels, size, size, requires_grad=True)
    return lambda: (torch.nn.functional.max_pool2d(x, 3, 2, 1) ** 2).sum().backward()


def _median_ms(runs: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm up
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for shape in CONVS:
        b, size, c_in, c_out, k, s = shape
        runs = {"native": _jax_conv(*shape, "native"), "cemjax": _jax_conv(*shape, "auto")}
        runs["torch"] = _torch_conv(*shape)
        rows.append((f"conv {k}×{k}/{s} {c_in}→{c_out} @ {b}×{size}²", _median_ms(runs, args.rounds)))
        print(f"{rows[-1][0]}: " + ", ".join(f"{n} {v:.1f} ms" for n, v in rows[-1][1].items()), flush=True)
    b, size, c = POOL
    runs = {"native": _jax_pool(*POOL, "native"), "cemjax": _jax_pool(*POOL, "auto"), "torch": _torch_pool(*POOL)}
    rows.append((f"max-pool 3×3/2, {c} ch @ {b}×{size}²", _median_ms(runs, args.rounds)))
    print(f"\nForward + backward (input and kernel gradients), ms, median of {args.rounds} rounds, "
          f"{jax.devices()[0].device_kind}, torch {torch.get_num_threads()} threads")  # fmt: skip
    print("| layer | XLA's own | cemjax | PyTorch | XLA / torch | cemjax / torch |")
    print("|---|---|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t['native']:.1f} | {t['cemjax']:.1f} | {t['torch']:.1f} | "
              f"{t['native'] / t['torch']:.2f} | {t['cemjax'] / t['torch']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
