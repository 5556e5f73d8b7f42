"""SwAV step time on CPU, and what the online probes cost a pretraining run.

1. The jitted cemjax SwAV step (`cemjax.methods.swav.step`) vs a PyTorch eager step written after the
   reference's `pretraining/swav` training loop, in the same run: same encoder (a torchvision ResNet with a
   1-channel stem; cemjax's registry ResNet of the same depth), projection MLP with BatchNorm, L2-normalised
   embedding, prototypes (normalised before each step), multi-crop batch (one encoder pass per resolution),
   Sinkhorn codes of the assigned views (over a full queue too with --queue), swapped-prediction loss, backward,
   LARC + SGD with momentum. Both get the same ready-made views (augmentation excluded). Timed in interleaved
   rounds after a warm-up step (compilation excluded); the median of the rounds is reported.
2. The probe overhead: the `swav:demo` run (synthetic patches, the shared pretraining loop) for --probe-steps
   steps with `probe.every` = --probe-every and without probes. Overhead = extra loop time per step, in %,
   with the first step (compilation) left out of both; the probes' own reported time (`probe/seconds`, every
   call, step 0 included) as a share of the plain run is shown beside it, and the smallest `probe.every` that
   keeps the probes' time per call under 5 % of the steps between calls.

  python experiments/benchmarks/swav_step_cpu.py --out docs/benchmarks/swav_step_cpu.md       # small, minutes
  python experiments/benchmarks/swav_step_cpu.py --depth 50 --sizes 224 96 --counts 2 6 --batch 16  # paper crops
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from step_table import compiled_runner, interleaved_medians, ratio_table


@dataclass(frozen=True)
class Shape:
    depth: int
    batch: int
    sizes: tuple[int, ...]
    counts: tuple[int, ...]
    prototypes: int
    hidden: int
    feat: int
    queue: int
    sinkhorn: int
    epsilon: float = 0.05
    temperature: float = 0.1
    assign: tuple[int, ...] = (0, 1)
    lr: float = 0.6
    momentum: float = 0.9
    weight_decay: float = 1e-6
    trust: float = 1e-3

    @property
    def view_sizes(self) -> tuple[int, ...]:
        return tuple(s for s, n in zip(self.sizes, self.counts, strict=True) for _ in range(n))

    def views(self) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        return [rng.standard_normal((self.batch, s, s, 1), np.float32) for s in self.view_sizes]

    def describe(self) -> str:
        crops = " + ".join(f"{n}×{s}²" for s, n in zip(self.sizes, self.counts, strict=True))
        return (f"ResNet-{self.depth}, batch {self.batch}, crops {crops}, {self.prototypes} prototypes, MLP "
                f"{self.hidden}→{self.feat}, {self.sinkhorn} Sinkhorn iterations, queue {self.queue}")  # fmt: skip


def unit_rows(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def jax_step(shape: Shape, mode: str) -> Callable[[], None]:
    """One cemjax SwAV step (compiled, warmed up) as a callable that runs it to completion."""
    from cemjax.configs.swav import get_config
    from cemjax.methods.swav.data import MultiCrop
    from cemjax.methods.swav.step import build_model, init_state, make_train_step
    from cemjax.train.optim import larc_sgd

    c = get_config("demo")
    c.model.encoder, c.model.compute_dtype = f"resnet{shape.depth}", "float32"
    c.swav.num_prototypes, c.swav.hidden_mlp, c.swav.feat_dim = shape.prototypes, shape.hidden, shape.feat
    tx = larc_sgd(lambda _: shape.lr, momentum=shape.momentum, weight_decay=shape.weight_decay,
                  trust_coefficient=shape.trust)  # fmt: skip
    graphdef, state = init_state(build_model(c.model, c.swav, seed=0), tx, shape.queue, len(shape.assign))
    if shape.queue:  # a full queue, so Sinkhorn runs over its rows as well
        state = state.replace(queue=jnp.asarray(unit_rows(np.random.default_rng(1), *state.queue.shape)))
    crops = MultiCrop(shape.sizes, shape.counts, (0.5,) * len(shape.sizes), (1.0,) * len(shape.sizes))
    step = make_train_step(
        graphdef, tx, lambda _: shape.lr, crops=crops, norms=(0.0, 1.0), crops_for_assign=shape.assign,
        temperature=shape.temperature, epsilon=shape.epsilon, sinkhorn_iterations=shape.sinkhorn,
        views_fn=lambda images, key, valid, **_: images,
    )  # fmt: skip
    ready = {"image": tuple(jnp.asarray(v) for v in shape.views())}
    return compiled_runner(step, state, ready, mode)


def torch_step(shape: Shape) -> Callable[[], None]:
    """The reference's SwAV iteration in PyTorch eager (fp32, one process), warmed up."""
    import torch
    import torch.nn.functional as F
    import torchvision

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = getattr(torchvision.models, f"resnet{shape.depth}")()
            self.backbone.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
            width = self.backbone.fc.in_features
            self.backbone.fc = torch.nn.Identity()
            self.projection_head = torch.nn.Sequential(torch.nn.Linear(width, shape.hidden),
                                                       torch.nn.BatchNorm1d(shape.hidden), torch.nn.ReLU(),
                                                       torch.nn.Linear(shape.hidden, shape.feat))  # fmt: skip
            self.prototypes = torch.nn.Linear(shape.feat, shape.prototypes, bias=False)

        def forward(self, views):
            pooled, start = [], 0
            while start < len(views):  # one backbone pass per run of equal-size crops
                stop = start
                while stop < len(views) and views[stop].shape[-1] == views[start].shape[-1]:
                    stop += 1
                pooled.append(self.backbone(torch.cat(views[start:stop])))
                start = stop
            z = F.normalize(self.projection_head(torch.cat(pooled)), dim=1)
            return z, self.prototypes(z)

    def sinkhorn(out):
        q = torch.exp(out / shape.epsilon).t()
        k, b = q.shape
        q /= q.sum()
        for _ in range(shape.sinkhorn):
            q /= q.sum(dim=1, keepdim=True) * k
            q /= q.sum(dim=0, keepdim=True) * b
        return (q * b).t()

    net = Net().train()
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=shape.lr, momentum=shape.momentum, weight_decay=0.0)
    rng = np.random.default_rng(1)
    queue = torch.from_numpy(unit_rows(rng, len(shape.assign), shape.queue, shape.feat)) if shape.queue else None
    views = [torch.from_numpy(v.transpose(0, 3, 1, 2).copy()) for v in shape.views()]
    bs, n_views = shape.batch, len(views)

    def run():
        with torch.no_grad():
            net.prototypes.weight.copy_(F.normalize(net.prototypes.weight, dim=1))
        embedding, output = net(views)
        embedding = embedding.detach()
        loss = 0
        for i, crop in enumerate(shape.assign):
            with torch.no_grad():
                out = output[bs * crop : bs * (crop + 1)].detach()
                if queue is not None:
                    out = torch.cat((queue[i] @ net.prototypes.weight.t(), out))
                    queue[i, bs:] = queue[i, :-bs].clone()
                    queue[i, :bs] = embedding[crop * bs : (crop + 1) * bs]
                q = sinkhorn(out)[-bs:]
            sub = 0
            for v in (v for v in range(n_views) if v != crop):
                sub -= torch.mean(torch.sum(q * F.log_softmax(output[bs * v : bs * (v + 1)] / shape.temperature, 1), 1))
            loss += sub / (n_views - 1)
        loss = loss / len(shape.assign)
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():  # LARC(clip=False) takes the weight decay over, then plain SGD with momentum
            for p in params:
                if p.grad is None:
                    continue
                p_norm, g_norm = p.norm(), p.grad.norm()
                if p_norm != 0 and g_norm != 0:
                    local = shape.trust * p_norm / (g_norm + p_norm * shape.weight_decay + 1e-8)
                    p.grad.add_(p, alpha=shape.weight_decay).mul_(local)
        opt.step()

    run()
    return run


def step_times(shape: Shape, rounds: int, per_round: int, native: bool) -> str:
    steps = {"PyTorch eager (baseline)": torch_step(shape)}
    if native:
        steps["cemjax jit, XLA's own convolution gradients"] = jax_step(shape, "native")
    steps["cemjax jit (the default)"] = jax_step(shape, "auto")
    median = interleaved_medians(steps, rounds, per_round)
    title = (f"SwAV step, {shape.describe()}, {jax.devices()[0].device_kind}, median of {rounds} interleaved "
             f"rounds × {per_round} steps")  # fmt: skip
    return f"{title}; img/s counts samples\n\n{ratio_table(median, 'PyTorch eager (baseline)', shape.batch, unit='ms')}"


def timed_run(steps: int, probe_every: int, batch: int, workdir: str) -> dict[str, float]:
    """The `swav:demo` run (batch `batch`) for `steps` steps → loop seconds without its first (compiling) step,
    the sum of `probe/seconds`, and the number of probe calls."""
    from cemjax import methods
    from cemjax.configs.swav import get_config
    from cemjax.train import loop, pretraining
    from cemjax.train.metrics import read_metrics

    c = get_config("demo")
    c.max_steps, c.probe.every, c.export_at_end, c.batch_size = steps, probe_every, False, batch
    c.swav.queue_length -= c.swav.queue_length % batch  # a multiple of the batch (it starts in epoch 2)
    c.checkpoint_every, c.log_every = 10 * steps, 10 * steps  # one save and one log line, at the end
    marks: dict[str, float] = {}

    def run_steps(state, *, step_fn, **kwargs):
        def first_then_rest(state, batch, key):
            out = step_fn(state, batch, key)
            if "first" not in marks:
                jax.block_until_ready(out)
                marks["first"] = time.perf_counter()
            return out

        result = loop.run_steps(state, step_fn=first_then_rest, **kwargs)
        jax.block_until_ready(result[0])
        marks["end"] = time.perf_counter()
        return result

    pretraining.run_steps, original = run_steps, pretraining.run_steps
    try:
        methods.get("swav").train(c, workdir)
    finally:
        pretraining.run_steps = original
    probes = [r["probe/seconds"] for r in read_metrics(workdir) if "probe/seconds" in r]
    return {"loop": marks["end"] - marks["first"], "probe": float(np.sum(probes)), "calls": len(probes)}


def probe_overhead(steps: int, every: int, batch: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        plain = timed_run(steps, 0, batch, os.path.join(tmp, "plain"))
        probed = timed_run(steps, every, batch, os.path.join(tmp, "probed"))
    per_step = plain["loop"] / (steps - 1)
    extra = (probed["loop"] - plain["loop"]) / plain["loop"]
    share = probed["probe"] / plain["loop"]
    per_call = probed["probe"] / probed["calls"]
    return "\n".join([
        f"Online probe overhead, `swav:demo` (ResNet-18, batch {batch}, 2×96² + 4×48²), {steps} steps, probes every "
        f"{every} steps + step 0 + the last ({probed['calls']} calls), first (compiling) step excluded",
        "",
        "| run | loop s | s/step | probe s (reported) | overhead per step | probe s / call | every k for ≤ 5 % |",
        "|---|---|---|---|---|---|---|",
        f"| no probes | {plain['loop']:.1f} | {per_step:.3f} | – | – | – | – |",
        f"| probe.every={every} | {probed['loop']:.1f} | {probed['loop'] / (steps - 1):.3f} | "
        f"{probed['probe']:.1f} | {100 * extra:+.1f} % (probes' own time: {100 * share:.1f} %) | {per_call:.2f} | "
        f"{math.ceil(per_call / (0.05 * per_step))} |",
    ])  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=18, help="ResNet depth both sides (18, 34, 50)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sizes", type=int, nargs="+", default=[96, 48], help="crop sizes, largest first")
    ap.add_argument("--counts", type=int, nargs="+", default=[2, 2], help="crops per size (paper: 2 6)")
    ap.add_argument("--prototypes", type=int, default=3000)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--feat", type=int, default=128)
    ap.add_argument("--queue", type=int, default=0, help="queue rows per assigned view (0: none; else full)")
    ap.add_argument("--sinkhorn", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each times every implementation")
    ap.add_argument("--steps", type=int, default=2, help="steps per implementation per round")
    ap.add_argument("--native", action="store_true", help="also time XLA's own convolution gradients")
    ap.add_argument("--probe-steps", type=int, default=60, help="steps of the probe-overhead runs (0: skip)")
    ap.add_argument("--probe-every", type=int, default=20)
    ap.add_argument("--probe-batch", type=int, default=32, help="batch of the probe-overhead runs (demo: 32)")
    ap.add_argument("--out", default="", help="also write the tables here (Markdown)")
    args = ap.parse_args()
    shape = Shape(args.depth, args.batch, tuple(args.sizes), tuple(args.counts), args.prototypes, args.hidden,
                  args.feat, args.queue, args.sinkhorn)  # fmt: skip
    parts = [step_times(shape, args.rounds, args.steps, args.native)]
    print("\n" + parts[-1], flush=True)
    if args.probe_steps:
        parts.append(probe_overhead(args.probe_steps, args.probe_every, args.probe_batch))
        print("\n" + parts[-1], flush=True)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write("### SwAV step time and probe overhead on CPU\n\n" + "\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
