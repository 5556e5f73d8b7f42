"""ResNet-50 MoCoV2 step time: JAX (jitted cemjax step) vs a PyTorch eager step of the same model and batch,
measured in the same run. Both get the same ready-made views (augmentation excluded; it is benchmarked in
augment_throughput.py). Prints one table.

  python experiments/benchmarks/moco_step_cpu.py [--batch 8] [--size 224] [--steps 5]
"""

from __future__ import annotations

import argparse
import copy
import time

import jax
import jax.numpy as jnp
import numpy as np


def time_jax(batch: int, size: int, steps: int, queue: int) -> float:
    from cemjax.train import moco_step

    encoder = moco_step.build_encoder(50, 1, 128, "float32", seed=0)
    tx = moco_step.sgd_with_weight_decay(lambda s: 0.015, 0.9, 1e-4)
    graphdef, state = moco_step.init_state(encoder, tx, queue, 128, seed=0)
    ready = jnp.asarray(np.random.default_rng(0).standard_normal((batch, size, size, 1), np.float32))
    step = moco_step.make_train_step(
        graphdef, tx, lambda s: 0.015, momentum=0.999, temperature=0.2, bn_mode="sync", bn_groups=1,
        image_size=size, norms=(0.0, 1.0), views_fn=lambda images, key, **_: (images, images),
    )  # fmt: skip
    step = jax.jit(step, donate_argnums=0)
    key = jax.random.key(0)
    for _ in range(2):  # compile + warm up
        state, metrics = step(state, ready, key)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, ready, key)
    jax.block_until_ready(metrics)
    return (time.perf_counter() - start) / steps


def time_torch(batch: int, size: int, steps: int, queue: int) -> float:
    import torch
    import torchvision

    net = torchvision.models.resnet50(num_classes=128)
    net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    net.fc = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), net.fc)
    key_net = copy.deepcopy(net)
    for p in key_net.parameters():
        p.requires_grad = False
    opt = torch.optim.SGD(net.parameters(), lr=0.015, momentum=0.9, weight_decay=1e-4)
    bank = torch.nn.functional.normalize(torch.randn(128, queue), dim=0)
    x = torch.randn(batch, 1, size, size)

    def step():
        q = torch.nn.functional.normalize(net(x), dim=1)
        with torch.no_grad():
            for pk, pq in zip(key_net.parameters(), net.parameters(), strict=True):
                pk.mul_(0.999).add_(pq.detach(), alpha=0.001)
            k = torch.nn.functional.normalize(key_net(x), dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank], 1) / 0.2
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(batch, dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
        bank[:, :batch] = k.T

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--queue", type=int, default=65536)
    args = ap.parse_args()
    torch_s = time_torch(args.batch, args.size, args.steps, args.queue)
    jax_s = time_jax(args.batch, args.size, args.steps, args.queue)
    device = jax.devices()[0].device_kind
    print(f"\nMoCoV2 ResNet-50 step, batch {args.batch} × {args.size}², queue {args.queue}, {device}")
    print("| implementation | s/step | img/s | ratio vs torch |")
    print("|---|---|---|---|")
    print(f"| PyTorch eager (baseline) | {torch_s:.3f} | {args.batch / torch_s:.1f} | 1.00 |")
    print(f"| cemjax jit | {jax_s:.3f} | {args.batch / jax_s:.1f} | {jax_s / torch_s:.2f} |")


if __name__ == "__main__":
    main()
