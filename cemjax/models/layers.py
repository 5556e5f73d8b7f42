"""Torch-equivalent building blocks in Flax NNX.

Layouts are NHWC for activations and HWIO for conv kernels (the XLA-native ones); `cemjax.convert` does the
OIHW transposes. Every convolution pads explicitly and symmetrically, as torch does, because XLA's 'SAME'
pads stride-2 convolutions asymmetrically.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from cemjax.models.cpu_grads import conv_general_dilated, max_pool_3x3_s2  # noqa: F401 (re-exported)
from cemjax.models.init import KAIMING_NORMAL_FAN_OUT


def at_least_float32(x: jax.Array) -> jax.Array:
    """bf16/f16 → float32; float32 and float64 unchanged (float64 parity checks run under `jax.enable_x64`)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """torch.nn.functional.normalize(x, dim=1): x / max(‖x‖, eps). [B, D] → [B, D] float32."""
    x = x.astype(jnp.float32)
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    use_bias: bool = False,
    kernel_init=None,
    dtype=None,
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """A torch-style `nn.Conv2d`: explicit symmetric padding `padding` on both spatial axes (kernel gradient as
    matrix products on CPU: `cemjax.models.cpu_grads`)."""
    return nnx.Conv(
        in_channels,
        out_channels,
        kernel_size=(kernel_size, kernel_size),
        strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        use_bias=use_bias,
        kernel_init=kernel_init or KAIMING_NORMAL_FAN_OUT,
        bias_init=nnx.initializers.zeros_init(),
        dtype=dtype,
        param_dtype=jnp.float32,
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )


class BatchNorm(nnx.Module):
    """BatchNorm over all axes but the last, numerically equal to torch's `nn.BatchNorm2d/1d`.

    Names and semantics follow torch: `weight`, `bias`, `running_mean`, `running_var` (updated with the
    *unbiased* batch variance, momentum 0.1 = Flax momentum 0.9), `num_batches_tracked`, eps 1e-5.
    Statistics are computed in at least float32, also when `dtype` is bfloat16.

    `axis_name`: when set (inside `shard_map`/`vmap` with that axis), batch statistics are averaged over it,
    i.e. SyncBN across the devices of that axis. Without it, under plain `jax.jit` with a batch-sharded input,
    XLA computes the global-batch statistics anyway.

    `num_groups` G > 1 (train mode): the batch is split into G contiguous groups with their own statistics, as
    if each group sat on its own GPU under DDP without SyncBN (MoCo's shuffle-BN uses this). Running statistics
    take the mean over groups of each group's update.
    """

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = 0.1,
        epsilon: float = 1e-5,
        use_running_average: bool = False,
        axis_name: str | None = None,
        num_groups: int = 1,
        dtype=None,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs  # deterministic init, kept for a uniform constructor signature
        self.num_features = num_features
        self.momentum = momentum
        self.epsilon = epsilon
        self.use_running_average = use_running_average
        self.axis_name = axis_name
        self.num_groups = num_groups
        self.dtype = dtype
        self.weight = nnx.Param(jnp.ones((num_features,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((num_features,), jnp.float32))
        self.running_mean = nnx.BatchStat(jnp.zeros((num_features,), jnp.float32))
        self.running_var = nnx.BatchStat(jnp.ones((num_features,), jnp.float32))
        self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [..., C] → same shape and dtype (or `self.dtype` when set)."""
        if self.use_running_average:
            mean, var = self.running_mean[...], self.running_var[...]
        else:
            xf = at_least_float32(x)
            groups = self.num_groups
            if x.shape[0] % groups:
                raise ValueError(f"BatchNorm: batch {x.shape[0]} is not divisible into {groups} groups")
            grouped = xf.reshape(groups, -1, *xf.shape[1:])  # [G, B/G, ..., C]
            reduce_axes = tuple(range(1, grouped.ndim - 1))
            count = jnp.asarray(grouped[0].size // xf.shape[-1], xf.dtype)
            mean = grouped.mean(reduce_axes, keepdims=True)  # [G, 1, ..., 1, C]
            if self.axis_name is not None:
                mean = jax.lax.pmean(mean, self.axis_name)
            var = jnp.square(grouped - mean).mean(reduce_axes, keepdims=True)  # two-pass: exact for large means
            if self.axis_name is not None:
                var = jax.lax.pmean(var, self.axis_name)
                count = jax.lax.psum(count, self.axis_name)
            unbiased = var * count / jnp.maximum(count - 1.0, 1.0)
            m = self.momentum
            channel = xf.shape[-1]
            self.running_mean[...] = (1.0 - m) * self.running_mean[...] + m * mean.reshape(-1, channel).mean(0)
            self.running_var[...] = (1.0 - m) * self.running_var[...] + m * unbiased.reshape(-1, channel).mean(0)
            self.num_batches_tracked[...] = self.num_batches_tracked[...] + 1
            if groups > 1:
                scale = self.weight[...] * jax.lax.rsqrt(var + self.epsilon)
                shift = self.bias[...] - mean * scale
                return (grouped * scale + shift).reshape(x.shape).astype(self.dtype or x.dtype)
            mean, var = mean.reshape(channel), var.reshape(channel)
        scale = self.weight[...] * jax.lax.rsqrt(var + self.epsilon)
        shift = self.bias[...] - mean * scale
        out_dtype = self.dtype or x.dtype
        return (at_least_float32(x) * scale + shift).astype(out_dtype)


def set_batchnorm_groups(model: nnx.Module, groups: int) -> None:
    """Set `num_groups` on every BatchNorm of `model` (1 = whole-batch statistics)."""
    for _, module in nnx.iter_modules(model):
        if isinstance(module, BatchNorm):
            module.num_groups = groups
