"""Torch-equivalent weight initialisers that are fast to run eagerly.

`jax.random.normal(key, shape)` compiles one XLA kernel per distinct shape, so eagerly initialising a
ResNet-50/UNet compiles ~150 tiny programs (tens of seconds on 2 CPU cores). Here every eager draw comes
from one compiled kernel of fixed size (`_CHUNK` numbers per `fold_in(key, i)`), and numpy does the
slicing and scaling. Under tracing (`nnx.jit`, `nnx.eval_shape`) plain `jax.random` is used.
Values are a deterministic function of the key either way (the two paths give different draws).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

_CHUNK = 1 << 16


@functools.partial(jax.jit, static_argnames="distribution")
def _chunk(key: jax.Array, index: jax.Array, distribution: str) -> jax.Array:
    key = jax.random.fold_in(key, index)
    if distribution == "normal":
        return jax.random.normal(key, (_CHUNK,), jnp.float32)
    return jax.random.uniform(key, (_CHUNK,), jnp.float32, -1.0, 1.0)


def _standard(key: jax.Array, shape: tuple[int, ...], distribution: str) -> np.ndarray | jax.Array:
    """Standard normal, or uniform on [-1, 1], of `shape`."""
    if isinstance(key, jax.core.Tracer):
        if distribution == "normal":
            return jax.random.normal(key, shape, jnp.float32)
        return jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)
    n = math.prod(shape)
    parts = [np.asarray(_chunk(key, np.uint32(i), distribution)) for i in range(-(-n // _CHUNK))]
    return np.concatenate(parts)[:n].reshape(shape)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a HWIO conv kernel or an (in, out) dense kernel."""
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def variance_scaling(scale: float, mode: str, distribution: str):
    """Like `jax.nn.initializers.variance_scaling` with distribution "normal" (untruncated) or "uniform"."""

    def init(key, shape, dtype=jnp.float32):
        fan_in, fan_out = _fans(tuple(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        std = math.sqrt(scale / fan)
        bound = std if distribution == "normal" else math.sqrt(3.0) * std
        return jnp.asarray(_standard(key, tuple(shape), distribution) * bound, dtype)

    return init


def uniform(bound: float):
    """uniform(-bound, bound), e.g. torch.nn.Linear's bias with bound 1/sqrt(fan_in)."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.asarray(_standard(key, tuple(shape), "uniform") * bound, dtype)

    return init


# torch.nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu") — torchvision's ResNet convs.
KAIMING_NORMAL_FAN_OUT = variance_scaling(2.0, "fan_out", "normal")
# torch.nn.init.kaiming_uniform_(mode="fan_in", nonlinearity="relu") — smp's decoder convs.
KAIMING_UNIFORM_FAN_IN = variance_scaling(2.0, "fan_in", "uniform")
# torch.nn.Linear's default weight init (kaiming_uniform_ with a = sqrt(5)): var = 1 / (3 fan_in).
TORCH_LINEAR_DEFAULT = variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# torch.nn.init.xavier_uniform_ — smp's segmentation head.
XAVIER_UNIFORM = variance_scaling(1.0, "fan_avg", "uniform")


def torch_linear_bias(fan_in: int):
    """torch.nn.Linear's default bias init: uniform(±1/sqrt(fan_in))."""
    return uniform(1.0 / math.sqrt(fan_in))
