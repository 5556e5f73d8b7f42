"""MoCoV2 step time on CPU: the jitted cemjax step vs a PyTorch eager step of the same model and batch, in the
same run. All get the same ready-made views (augmentation excluded; see augment_throughput.py). Prints one table.

Rows: PyTorch eager (baseline), cemjax as shipped (kernel gradients and 1×1 convolutions as matrix products on
CPU, `cemjax.models.cpu_grads`), and cemjax with XLA's own convolution gradients (what it was before). The
shared 2-core machine is noisy, so the implementations are timed in interleaved rounds and the median of the
rounds is reported.

  python experiments/benchmarks/moco_step_cpu.py [--depth 50] [--batch 8] [--size 224] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from step_table import compiled_runner, interleaved_medians, ratio_table


def jax_step(depth: int, batch: int, size: int, queue: int, mode: str) -> Callable[[], None]:
    """One cemjax MoCo step (compiled, warmed up) as a callable that runs it to completion."""
    from cemjax.configs.mocov2 import get_config
    from cemjax.methods.mocov2 import step as moco_step

    model = get_config("paper").model
    model.encoder = f"resnet{depth}"
    encoder = moco_step.query_encoder(model, seed=0)
    tx = moco_step.sgd_with_weight_decay(lambda s: 0.015, 0.9, 1e-4)
    graphdef, state = moco_step.init_state(encoder, tx, queue, 128, seed=0)
    ready = {"image": jnp.asarray(np.random.default_rng(0).standard_normal((batch, size, size, 1), np.float32))}
    step = moco_step.make_train_step(
        graphdef, tx, lambda s: 0.015, momentum=0.999, temperature=0.2, bn_mode="sync", bn_groups=1,
        image_size=size, norms=(0.0, 1.0), views_fn=lambda images, key, valid, **_: (images, images),
    )  # fmt: skip
    return compiled_runner(step, state, ready, mode)


def torch_step(depth: int, batch: int, size: int, queue: int) -> Callable[[], None]:
    import torch
    import torchvision

    net = getattr(torchvision.models, f"resnet{depth}")(num_classes=128)
    net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    net.fc = torch.nn.Sequential(torch.nn.Linear(net.fc.in_features, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
    key_net = copy.deepcopy(net)
    for p in key_net.parameters():
        p.requires_grad = False
    opt = torch.optim.SGD(net.parameters(), lr=0.015, momentum=0.9, weight_decay=1e-4)
    bank = torch.nn.functional.normalize(torch.randn(128, queue), dim=0)
    x = torch.randn(batch, 1, size, size)

    def run():
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

    run()
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each times every implementation")
    ap.add_argument("--steps", type=int, default=2, help="steps per implementation per round")
    ap.add_argument("--queue", type=int, default=65536)
    args = ap.parse_args()
    shape = (args.depth, args.batch, args.size, args.queue)
    steps = {
        "PyTorch eager (baseline)": torch_step(*shape),
        "cemjax jit, XLA's own convolution gradients": jax_step(*shape, "native"),
        "cemjax jit (conv gradients as products on CPU, the default)": jax_step(*shape, "auto"),
    }
    median = interleaved_medians(steps, args.rounds, args.steps)
    device = jax.devices()[0].device_kind
    print(f"\nMoCoV2 ResNet-{args.depth} step, batch {args.batch} × {args.size}², queue {args.queue}, {device}, "
          f"median of {args.rounds} interleaved rounds × {args.steps} steps")  # fmt: skip
    print(ratio_table(median, "PyTorch eager (baseline)", args.batch))


if __name__ == "__main__":
    main()
