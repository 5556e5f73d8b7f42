"""The CPU gradient replacements (`cemjax.models.cpu_grads`) give XLA's / torch's results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax import lax

from cemjax.models.cpu_grads import _NHWC, conv_general_dilated, gradient_mode, max_pool_3x3_s2

CONV_CASES = [  # (H, W, C_in, C_out, kernel, stride, padding): every branch of the kernel gradient
    (17, 18, 3, 5, 3, 1, 1),  # thin output: XLA's own gradient
    (16, 17, 20, 80, 3, 2, 1),  # one product per tap, stride 2, odd width
    (15, 16, 1, 64, 7, 2, 3),  # the stem: im2col
    (9, 10, 6, 7, 1, 2, 0),  # 1×1 stride 2 (a shortcut), thin
    (13, 12, 32, 64, 1, 2, 0),  # 1×1 stride 2, wide
    (8, 8, 64, 128, 1, 1, 0),  # 1×1 bottleneck expansion
]


def _conv_loss(conv, strides, padding):
    return lambda x, w: jnp.sum(jnp.sin(conv(x, w, strides, padding, dimension_numbers=_NHWC)))


@pytest.mark.parametrize("h, w, c_in, c_out, k, s, p", CONV_CASES)
def test_conv_value_and_gradients_equal_lax(h, w, c_in, c_out, k, s, p):
    rng = np.random.default_rng(k * 100 + c_out)
    x = jnp.asarray(rng.standard_normal((2, h, w, c_in)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((k, k, c_in, c_out)) / np.sqrt(k * k * c_in), jnp.float32)
    args = ((s, s), ((p, p), (p, p)))
    reference = jax.jit(jax.value_and_grad(_conv_loss(lax.conv_general_dilated, *args), (0, 1)))
    v_ref, (dx_ref, dw_ref) = reference(x, kernel)
    v, (dx, dw) = jax.jit(jax.value_and_grad(_conv_loss(conv_general_dilated, *args), (0, 1)))(x, kernel)
    assert abs(float(v - v_ref)) <= 1e-5 * max(1.0, abs(float(v_ref)))
    for got, want in ((dx, dx_ref), (dw, dw_ref)):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert float(jnp.abs(got - want).max()) <= 1e-5 * float(jnp.abs(want).max())


def test_gradients_use_products_on_cpu_and_native_mode_switches_them_off():
    x = jnp.ones((2, 8, 8, 64), jnp.float32)
    kernel = jnp.ones((3, 3, 64, 64), jnp.float32)

    def lowered():  # a new function each time: jit caches traces per function
        grad = jax.grad(_conv_loss(conv_general_dilated, (1, 1), ((1, 1), (1, 1))), 1)
        return jax.jit(grad).lower(x, kernel).as_text()

    assert "dot_general" in lowered()
    with gradient_mode("native"):
        assert "dot_general" not in lowered()
    assert "dot_general" in lowered()
    with pytest.raises(ValueError, match="'auto' or 'native'"):
        with gradient_mode("fast"):
            pass


def test_bfloat16_convolution_gradients_are_close():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 12, 12, 64)), jnp.bfloat16)
    kernel = jnp.asarray(rng.standard_normal((3, 3, 64, 64)) / 24, jnp.bfloat16)
    args = ((1, 1), ((1, 1), (1, 1)))
    dw_ref = jax.grad(_conv_loss(lax.conv_general_dilated, *args), 1)(x.astype(jnp.float32), kernel.astype(jnp.float32))
    dw = jax.jit(jax.grad(_conv_loss(conv_general_dilated, *args), 1))(x, kernel)
    assert dw.dtype == jnp.bfloat16
    assert float(jnp.abs(dw.astype(jnp.float32) - dw_ref).max()) <= 0.05 * float(jnp.abs(dw_ref).max())


@pytest.mark.parametrize("shape, ties", [((2, 15, 17, 8), False), ((2, 16, 15, 8), True), ((1, 12, 12, 3), True)])
def test_max_pool_gradient_equals_torch_first_maximum_rule(shape, ties):
    """Ties (rounded values, ReLU zeros) go to the window's first maximum, as torch and XLA's select-and-scatter."""
    rng = np.random.default_rng(len(shape) + shape[1])
    x = rng.standard_normal(shape).astype(np.float32)
    if ties:
        x = np.maximum(np.round(x), 0)
    dy = rng.standard_normal((shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2, shape[3])).astype(np.float32)
    y, vjp = jax.vjp(jax.jit(max_pool_3x3_s2), jnp.asarray(x))
    (dx,) = jax.jit(vjp)(jnp.asarray(dy))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, 3, 2, 1)
    yt.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(np.asarray(y), yt.detach().numpy().transpose(0, 2, 3, 1))
    np.testing.assert_allclose(np.asarray(dx), xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-5)
    with gradient_mode("native"):
        (dx_native,) = jax.vjp(max_pool_3x3_s2, jnp.asarray(x))[1](jnp.asarray(dy))
    np.testing.assert_allclose(np.asarray(dx), np.asarray(dx_native), atol=1e-5)
