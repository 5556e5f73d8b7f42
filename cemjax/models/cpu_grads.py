"""Convolution and max-pool gradients that XLA:CPU runs several times faster, with the same results.

Measured in `experiments/benchmarks/cpu_conv_ops.py` (2 cores): XLA:CPU lowers the kernel (weight) gradient of
a convolution to a "backward-filter" convolution whose window is the whole feature map and runs it 4-30× slower
than the same arithmetic as matrix products (a 1×1 256→64 conv on 16×56×56: ~750 ms natively, ~25 ms as one
dot); a 1×1 convolution's forward runs ~2× faster as a dot; max-pool's gradient (select-and-scatter) ~3×
slower than nine strided slices. Each replacement applies only on CPU (`lax.platform_dependent`): GPUs and TPUs
keep XLA's own kernels.

Kernel gradient of y = conv(x, w) (stride s, padding p), per kernel tap (i, j):

    dw[i, j] = Σ_{n, u, v} x_pad[n, s·u + i, s·v + j, :]ᵀ ⊗ dy[n, u, v, :]     ([C_in, C_out] per tap)

as one matrix product per tap (strided slice of x_pad, flattened, times dy) or, for thin inputs (C_in < 16, the
1-channel 7×7 stem), one product of the stacked taps (im2col); both accumulate in float32. Products win from 64
output channels on (1.1-15× at ResNet shapes); for thinner outputs (a UNet decoder's last stages) XLA's own
gradient is faster and is kept. 1×1 unpadded convolutions (ResNet bottlenecks and shortcuts) run forward and
backward as plain matrix products.

Max-pool 3×3/2 gradient: the incoming gradient goes to the first maximum of each window in row-major order, the
rule of XLA's select-and-scatter and of torch, so the results equal the native gradient up to float summation
order where windows overlap.

`conv_general_dilated` has `lax.conv_general_dilated`'s signature; unsupported cases (dilation, groups, other
layouts) fall through to lax unchanged. `gradient_mode("native")` switches every replacement off (benchmarks).
"""

from __future__ import annotations

import contextlib
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
_IM2COL_BELOW = 16  # input channels under which the taps are stacked into one product
_PRODUCTS_FROM = 64  # output channels from which the products win (below, XLA's own kernel gradient is faster)
_mode = {"gradients": "auto"}


@contextlib.contextmanager
def gradient_mode(mode: str):
    """Within the block, functions traced use `mode`: "auto" (the CPU replacements above) or "native" (XLA's own
    convolutions and gradients everywhere, to benchmark against). Applies when a function is traced, so jit a new
    function inside the block (jit reuses its traces of a function seen before)."""
    if mode not in ("auto", "native"):
        raise ValueError(f"gradient mode {mode!r}: use 'auto' or 'native'")
    previous, _mode["gradients"] = _mode["gradients"], mode
    try:
        yield
    finally:
        _mode["gradients"] = previous


def _is_nhwc_hwio(dimension_numbers) -> bool:
    if dimension_numbers is None:
        return False
    if isinstance(dimension_numbers, tuple) and all(isinstance(s, str) for s in dimension_numbers):
        return tuple(dimension_numbers) == ("NHWC", "HWIO", "NHWC")
    return tuple(map(tuple, dimension_numbers)) == tuple(map(tuple, _NHWC))


def _taps(x_pad: jax.Array, out_hw: tuple[int, int], kernel_hw: tuple[int, int], strides: tuple[int, int]):
    """The strided window of `x_pad` [N, Hp, Wp, C] under each kernel tap: list of [N, Ho, Wo, C], row-major taps."""
    (ho, wo), (sh, sw) = out_hw, strides
    n, _, _, c = x_pad.shape
    return [
        lax.slice(x_pad, (0, i, j, 0), (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, c), (1, sh, sw, 1))
        for i in range(kernel_hw[0])
        for j in range(kernel_hw[1])
    ]


def kernel_gradient(x: jax.Array, dy: jax.Array, kernel_hw: tuple[int, int], strides, padding) -> jax.Array:
    """dL/dw [kh, kw, C_in, C_out] (float32) of an NHWC/HWIO convolution, from x [N, H, W, C_in] and
    dy [N, Ho, Wo, C_out], as matrix products (see the module docstring)."""
    x_pad = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    c_in, c_out = x.shape[-1], dy.shape[-1]
    dy_rows = dy.reshape(-1, c_out)
    taps = _taps(x_pad, dy.shape[1:3], kernel_hw, strides)
    dot = partial(jnp.matmul, preferred_element_type=jnp.float32)
    if c_in < _IM2COL_BELOW and len(taps) > 1:
        cols = jnp.concatenate(taps, axis=-1).reshape(-1, len(taps) * c_in)
        return dot(cols.T, dy_rows).reshape(*kernel_hw, c_in, c_out)
    return jnp.stack([dot(t.reshape(-1, c_in).T, dy_rows) for t in taps]).reshape(*kernel_hw, c_in, c_out)


def _varying_axes(x) -> frozenset:
    """The shard_map mesh axes `x` varies over (empty outside shard_map)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)
    return frozenset(manual.varying if manual is not None else getattr(aval, "vma", ()))


def _lax_conv(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


def _pointwise_as_product(x, w, strides, padding):
    """A 1×1, unpadded convolution as one matrix product of the strided pixels (XLA:CPU runs it ~2× faster)."""
    del padding
    return jnp.matmul(x[:, :: strides[0], :: strides[1], :], w[0, 0])


def _is_pointwise(w, padding) -> bool:
    return w.shape[:2] == (1, 1) and all(p == (0, 0) for p in padding) and _mode["gradients"] == "auto"


def _forward(x, w, strides, padding):
    if not _is_pointwise(w, padding):
        return _lax_conv(x, w, strides, padding)
    return lax.platform_dependent(
        x, w, cpu=partial(_pointwise_as_product, strides=strides, padding=padding),
        default=partial(_lax_conv, strides=strides, padding=padding),
    )  # fmt: skip


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]) -> jax.Array:
    return _forward(x, w, strides, padding)


def _conv_fwd(x, w, strides, padding):
    return _conv(x, w, strides, padding), (x, w)


def _conv_bwd(strides, padding, residuals, dy):
    x, w = residuals
    (dx,) = jax.vjp(lambda x_: _forward(x_, w, strides, padding), x)[1](dy)

    def native(x, dy):
        return jax.vjp(lambda w_: _lax_conv(x, w_, strides, padding), w)[1](dy)[0]

    def as_products(x, dy):
        dw = kernel_gradient(x, dy, w.shape[:2], strides, padding).astype(w.dtype)
        # Under shard_map, a kernel replicated over axes that x / dy vary on gets the sum over them, as the
        # transpose of XLA's convolution gives it.
        summed = (_varying_axes(x) | _varying_axes(dy)) - _varying_axes(w)
        return lax.psum(dw, tuple(sorted(summed))) if summed else dw

    if _mode["gradients"] == "native" or (dy.shape[-1] < _PRODUCTS_FROM and not _is_pointwise(w, padding)):
        return dx, native(x, dy)
    return dx, lax.platform_dependent(x, dy, cpu=as_products, default=native)


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    batch_group_count=1,
    precision=None,
    preferred_element_type=None,
    **kwargs,
):
    """`lax.conv_general_dilated` with the CPU kernel gradient above, for undilated, ungrouped NHWC/HWIO
    convolutions with explicit padding; every other call goes to lax as is."""
    plain = (
        _is_nhwc_hwio(dimension_numbers)
        and not isinstance(padding, str)
        and all(d == 1 for d in (lhs_dilation or (1, 1)))
        and all(d == 1 for d in (rhs_dilation or (1, 1)))
        and feature_group_count == 1
        and batch_group_count == 1
        and precision is None
        and preferred_element_type is None
        and kwargs.get("out_sharding") is None
        and lhs.ndim == 4
    )
    if not plain:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count, precision, preferred_element_type, **kwargs,
        )  # fmt: skip
    return _conv(lhs, rhs, tuple(window_strides), tuple(tuple(int(v) for v in p) for p in padding))


def _max_pool_native(x: jax.Array) -> jax.Array:
    window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _max_pool_grad_by_taps(x: jax.Array, y: jax.Array, dy: jax.Array) -> jax.Array:
    """dL/dx of the 3×3/2 max-pool: each window's gradient to its first maximum (row-major), tap by tap."""
    x_pad = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
    (hp, wp), (ho, wo) = x_pad.shape[1:3], y.shape[1:3]
    taken = jnp.zeros(y.shape, bool)
    dx_pad = jnp.zeros(x_pad.shape, dy.dtype)
    zero = jnp.zeros((), dy.dtype)
    for k, tap in enumerate(_taps(x_pad, (ho, wo), (3, 3), (2, 2))):
        i, j = divmod(k, 3)
        hit = (tap == y) & ~taken
        taken = taken | hit
        placement = ((0, 0, 0), (i, hp - i - 2 * ho + 1, 1), (j, wp - j - 2 * wo + 1, 1), (0, 0, 0))
        dx_pad = dx_pad + lax.pad(jnp.where(hit, dy, zero), zero, placement)
    return dx_pad[:, 1:-1, 1:-1, :]


@jax.custom_vjp
def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """torch `MaxPool2d(3, stride=2, padding=1)` on NHWC (padding is -inf, so it never wins):
    [B, H, W, C] → [B, ⌈H/2⌉, ⌈W/2⌉, C]; its gradient as above."""
    return _max_pool_native(x)


def _max_pool_fwd(x):
    y = _max_pool_native(x)
    return y, (x, y)


def _max_pool_bwd(residuals, dy):
    x, y = residuals

    def native(x, y, dy):
        return jax.vjp(_max_pool_native, x)[1](dy)[0]

    if _mode["gradients"] == "native":
        return (native(x, y, dy),)
    return (lax.platform_dependent(x, y, dy, cpu=_max_pool_grad_by_taps, default=native),)


max_pool_3x3_s2.defvjp(_max_pool_fwd, _max_pool_bwd)
