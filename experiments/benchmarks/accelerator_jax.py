"""The cemjax side of `accelerator.py`: the MoCoV2 and fine-tuning steps exactly as the trainers build and jit
them (`make_train_step` + `cemjax.train.loop.jit_step`: shardings on the data mesh, state donated), orthoplane
inference through `predict_volume`, and the device's numbers (memory, FLOP counts, a matmul ceiling).

A built step is a `Step`: `run(n)` performs n steps and waits for the device; `flops` is XLA's count for one
whole step (`Lowered.cost_analysis()` of the unoptimised HLO: every operation, augmentation and optimizer
included) and `footprint` the step's device bytes (`Compiled.memory_analysis()`: arguments + outputs +
temporaries − donated aliases, i.e. what the step holds on the device while it runs).
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from cemjax.common.norms import CEM500K_NORMS
from cemjax.methods.mocov2 import loss as moco_loss
from cemjax.methods.mocov2 import step as moco
from cemjax.models import Unet, build_encoder
from cemjax.seg import step as seg
from cemjax.seg.inference import predict_volume
from cemjax.seg.optim import one_cycle, one_cycle_adamw
from cemjax.train import mesh as mesh_lib
from cemjax.train.loop import jit_step, place
from cemjax.train.schedules import moco_lr, scaled_lr

SEG_NORMS = ((CEM500K_NORMS[0],), (CEM500K_NORMS[1],))
BN_GROUP = 32  # images per shuffle-BN group: the paper's 4 GPUs × 32 (docs/method.md §2)


# dense bf16 peaks, TFLOP/s, by the vendor's datasheets (no sparsity); matched in this order against device_kind
DATASHEET_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("H800", 989.4), ("A100", 312.0))


def datasheet_peak_tflops(device_kind: str) -> float | None:
    return next((peak for name, peak in DATASHEET_PEAK_TFLOPS if name in device_kind), None)


class OutOfMemory(RuntimeError):
    """A step does not fit on the device (XLA said RESOURCE_EXHAUSTED, or its footprint exceeds the limit)."""


def is_oom(err: BaseException) -> bool:
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def memory_stats() -> dict | None:
    """The first local device's allocator statistics (bytes_in_use, peak_bytes_in_use, bytes_limit), or None
    where the backend keeps none (CPU)."""
    return jax.local_devices()[0].memory_stats() or None


def _one(analysis) -> dict:
    return analysis[0] if isinstance(analysis, list | tuple) else (analysis or {})


@dataclass
class Step:
    run: Callable[[int], None]
    batch: int
    flops: float  # XLA's count for one step
    footprint: int  # device bytes of the compiled step


def _compile(jitted, args, batch: int, init: Callable[[], tuple]) -> Step:
    """Lower, count, compile and check the fit of `jitted(*args)`; `init()` → (state, batch, key) on the device,
    made only once the step is known to fit. Runs one step; OutOfMemory if it does not fit."""
    lowered = jitted.lower(*args)
    flops = float(_one(lowered.cost_analysis()).get("flops", 0.0))
    compiled = lowered.compile()
    mem = compiled.memory_analysis()
    footprint = 0 if mem is None else int(mem.argument_size_in_bytes + mem.output_size_in_bytes
                                          + mem.temp_size_in_bytes - mem.alias_size_in_bytes)  # fmt: skip
    limit = (memory_stats() or {}).get("bytes_limit")
    if limit and footprint > limit:
        raise OutOfMemory(f"step needs {footprint / 2**30:.1f} GiB, the device has {limit / 2**30:.1f} GiB")
    holder = {}
    holder["state"], data, key = init()

    def run(n: int) -> None:
        for _ in range(n):
            holder["state"], holder["metrics"] = compiled(holder["state"], data, key)
        jax.block_until_ready(holder)

    try:
        run(1)
    except Exception as err:  # noqa: BLE001 — only an allocation failure is turned into OutOfMemory
        if is_oom(err):
            raise OutOfMemory(str(err).splitlines()[0]) from None
        raise
    return Step(run, batch, flops, footprint)


def abstract(tree, shardings):
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def bn_groups(batch: int) -> int:
    return max(2, batch // BN_GROUP)


def moco_step(encoder: str, size: int, queue: int, images_u8: np.ndarray, dtype: str = "bfloat16") -> Step:
    """MoCoV2 step (shuffle-BN in groups of 32, SGD, queue of `queue` keys, `dtype` compute with fp32 parameters)
    on uint8 [B, H, W, 1] patches kept on the device; the views are drawn on the device every step."""
    batch = images_u8.shape[0]
    net = build_encoder(encoder, in_channels=1, head="mlp", num_classes=moco_loss.EMBED_DIM, dtype=dtype,
                        rngs=nnx.Rngs(0))  # fmt: skip
    lr_fn = moco_lr(scaled_lr(0.015, batch), steps_per_epoch=1000, epochs=200)  # the paper's step schedule
    tx = moco.sgd_with_weight_decay(lr_fn, 0.9, 1e-4)
    graphdef, host_state = moco.init_state(net, tx, queue, moco_loss.EMBED_DIM, seed=0)
    mesh = mesh_lib.make_data_mesh()
    shardings = mesh_lib.state_shardings(host_state, mesh, "replicate")
    step_fn = moco.make_train_step(
        graphdef, tx, lr_fn, momentum=moco_loss.MOMENTUM, temperature=moco_loss.TEMPERATURE, bn_mode="shuffle",
        bn_groups=bn_groups(batch), image_size=size, norms=CEM500K_NORMS, mesh=mesh,
    )  # fmt: skip
    data = {"image": jax.ShapeDtypeStruct(images_u8.shape, jnp.uint8, sharding=mesh_lib.data_sharding(mesh))}
    key = jax.random.key(0)

    def init():  # the batch as the trainers feed it: full-size patches, so no "valid" sizes
        return place(host_state, shardings), {"image": jax.device_put(images_u8, mesh_lib.data_sharding(mesh))}, key

    return _compile(jit_step(step_fn, mesh, shardings), (abstract(host_state, shardings), data, key), batch, init)


def patches(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 [batch, size, size, 1] patches (the same for the same arguments: both frameworks get these)."""
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 1), np.uint8)


def largest_moco_step(encoder: str, size: int, queue: int, per_device: int, min_per_device: int, log,
                      dtype: str = "bfloat16") -> Step:  # fmt: skip
    """The MoCoV2 step at the largest batch that fits: `per_device` images per device, halved on OutOfMemory
    down to `min_per_device`."""
    devices = len(jax.devices())
    while True:
        batch = per_device * devices
        try:
            return moco_step(encoder, size, queue, patches(batch, size), dtype)
        except OutOfMemory as err:
            if per_device // 2 < min_per_device:
                raise OutOfMemory(f"batch {batch} does not fit ({err}); not halving below {min_per_device}") from None
            log(f"batch {batch} does not fit ({err}); halving")
            per_device //= 2
            gc.collect()


def seg_batch(batch: int, crop: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Host crops as the fine-tuning loader yields them: image, mask uint8 [B, crop, crop, 1], valid [B, 2]."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (batch, crop, crop, 1), np.uint8)
    mask = (rng.random((batch, crop, crop, 1)) < 0.3).astype(np.uint8)
    return {"image": image, "mask": mask, "valid": np.full((batch, 2), crop, np.int32)}


def unet_step(encoder: str, crop: int, host_batch: dict[str, np.ndarray], dtype: str = "bfloat16",
              total_steps: int = 10**6) -> Step:  # fmt: skip
    """UNet fine-tuning step, every parameter trained (random init: the paper's protocol), `dtype` compute: seg
    augmentation on the device, BCE, AdamW + one-cycle."""
    model = Unet(encoder, in_channels=1, classes=1, dtype=dtype, rngs=nnx.Rngs(0))
    trainable = jax.tree.map(lambda _: True, nnx.state(model, nnx.Param))
    tx = seg.masked_tx(one_cycle_adamw(total_steps), trainable)
    lr_fn, _ = one_cycle(total_steps, 0.003)
    graphdef, host_state = seg.init_state(model, tx)
    mesh = mesh_lib.make_data_mesh()
    shardings = mesh_lib.state_shardings(host_state, mesh, "replicate")
    step_fn = seg.make_train_step(graphdef, tx, lr_fn, crop=crop, norms=SEG_NORMS)
    data_sharding = mesh_lib.data_sharding(mesh)
    data = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=data_sharding) for k, v in host_batch.items()}
    key = jax.random.key(0)

    def init():
        return place(host_state, shardings), jax.device_put(host_batch, data_sharding), key

    batch = host_batch["image"].shape[0]
    return _compile(jit_step(step_fn, mesh, shardings), (abstract(host_state, shardings), data, key), batch, init)


def forward_flops(model: nnx.Module, shape: tuple[int, ...]) -> float:
    """XLA's FLOP count (2 per multiply-add) of one eval-mode forward pass of `model` on float32 `shape`."""
    model.eval()
    graphdef, variables = nnx.split(model)
    forward = jax.jit(lambda v, x: nnx.merge(graphdef, v, copy=True)(x))
    return float(_one(forward.lower(variables, jax.ShapeDtypeStruct(shape, jnp.float32)).cost_analysis())["flops"])


def encoder_flops(encoder: str, size: int) -> float:
    """Forward FLOPs of one size² image through the MoCoV2 encoder (with its MLP head)."""
    net = build_encoder(encoder, in_channels=1, head="mlp", num_classes=moco_loss.EMBED_DIM, rngs=nnx.Rngs(0))
    return forward_flops(net, (1, size, size, 1))


@functools.lru_cache
def unet_flops(encoder: str, size: int) -> float:
    """Forward FLOPs of one size² image through the UNet."""
    return forward_flops(Unet(encoder, in_channels=1, classes=1, rngs=nnx.Rngs(0)), (1, size, size, 1))


def orthoplane(encoder: str, volume: np.ndarray, batch: int, peak_rss, dtype: str = "bfloat16") -> dict:
    """Orthoplane inference of a uint8 [S, S, S] volume through a random UNet: a stack pass over the first
    `batch` slices compiles it, then one timed orthoplane pass. `peak_rss` is a context manager sampling the
    host's resident set (.base, .peak bytes). → seconds, host peak increase (bytes), foreground share."""
    model = Unet(encoder, in_channels=1, classes=1, dtype=dtype, rngs=nnx.Rngs(0))
    graphdef, state = seg.init_state(model, optax.identity())
    predict = seg.make_predict_fn(graphdef, state, SEG_NORMS)
    predict_volume(predict, volume[:batch], 1, mode="stack", batch_size=batch)  # compile, outside the timing
    with peak_rss() as mem:
        start = time.perf_counter()
        labels = predict_volume(predict, volume, 1, mode="orthoplane", batch_size=batch)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "host_delta": mem.peak - mem.base, "foreground": float(labels.mean())}


def matmul_tflops(n: int, repeats: int = 10) -> float:
    """Measured bf16 n×n×n matrix-product rate in TFLOP/s (random operands, median of `repeats` after a warm-up):
    the ceiling the device reaches through XLA here."""
    ka, kb = jax.random.split(jax.random.key(1))
    a = jax.random.normal(ka, (n, n), jnp.bfloat16)
    b = jax.random.normal(kb, (n, n), jnp.bfloat16)
    product = jax.jit(jnp.matmul)
    jax.block_until_ready(product(a, b))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(product(a, b))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / float(np.median(times)) / 1e12
