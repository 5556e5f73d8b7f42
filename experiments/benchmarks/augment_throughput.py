"""MoCoV2 two-view augmentation throughput: cemjax (jitted, batched, on the default JAX device) vs the same
recipe with torchvision transforms (per image, one thread, as a PyTorch DataLoader worker runs it).

    python experiments/benchmarks/augment_throughput.py [--batch 64] [--seconds 5]

Prints one table: images/s (each image → two 224×224 views) and the ratio to the torchvision baseline.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np


def torchvision_recipe():
    """docs/method.md §2 with torchvision (v1 transforms on PIL images; custom noise as in the reference)."""
    import torch
    from torchvision import transforms as T

    def noise(x):
        if torch.rand(()) < 0.5:
            var = 10 ** torch.empty(()).uniform_(-5, -4)
            x = (x + torch.randn_like(x) * var.sqrt()).clamp(0, 1)
        return x

    return T.Compose([
        T.RandomApply([T.RandomRotation(180)], p=0.5),
        T.RandomResizedCrop(224, scale=(0.2, 1.0)),
        T.ColorJitter(0.4, 0.4, 0.4, 0.1),
        T.RandomApply([T.GaussianBlur(23, sigma=(0.1, 2.0))], p=0.5),
        T.RandomHorizontalFlip(),
        T.RandomVerticalFlip(),
        T.ToTensor(),
        T.Lambda(noise),
        T.Normalize([0.58331613], [0.09966064]),
    ])  # fmt: skip


def _rate(step, n_per_step: int, seconds: float) -> float:
    step()  # warm-up / compile
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        step()
        n += n_per_step
    return n / (time.perf_counter() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args(argv)
    import torch
    from PIL import Image

    from cemjax.methods.mocov2.data import mocov2_views_jit
    from cemjax.synthetic import make_em_image

    torch.set_num_threads(1)
    base = make_em_image((448, 448), 8.0, seed=0).image
    images = np.stack([np.roll(base, 17 * i, axis=i % 2)[:224, :224] for i in range(args.batch)])[..., None]
    device_images = jax.device_put(images)
    keys = iter(jax.random.split(jax.random.key(0), 10_000))

    def ours():
        q, k = mocov2_views_jit(device_images, next(keys))
        k.block_until_ready()

    recipe, pil = torchvision_recipe(), [Image.fromarray(im[..., 0]) for im in images]
    counter = iter(range(10**9))

    def baseline():
        im = pil[next(counter) % len(pil)]
        recipe(im), recipe(im)

    ref = _rate(baseline, 1, args.seconds)
    mine = _rate(ours, args.batch, args.seconds)
    dev = jax.devices()[0]
    print(f"{'implementation':<44} {'device':<10} {'images/s':>10} {'ratio':>7}")
    print(f"{'torchvision transforms, per image, 1 thread':<44} {'cpu':<10} {ref:>10.1f} {1.0:>7.2f}")
    print(f"{f'cemjax mocov2_views, jit, batch {args.batch}':<44} {dev.platform:<10} {mine:>10.1f} {mine / ref:>7.2f}")


if __name__ == "__main__":
    main()
