"""Shared helpers for tests that compare with real PyTorch models."""

import numpy as np
import torch
from flax import nnx


def calibrate_bn(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Give every BatchNorm realistic running statistics: one train forward with cumulative averaging
    (momentum=None makes running stats equal the batch stats), then eval mode."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    for m in bns:
        m.momentum = 0.1
    return model.eval()


def numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def nchw_to_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.numpy().transpose(0, 2, 3, 1)


def assert_state_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), set(actual) ^ set(expected)
    for k, v in expected.items():
        a = np.asarray(actual[k])
        assert a.shape == v.shape and a.dtype == v.dtype, (k, a.shape, v.shape, a.dtype, v.dtype)
        np.testing.assert_array_equal(a, v, err_msg=k)


def cast_float_state(module, dtype) -> None:
    """Cast every floating variable of an NNX module in place (float64 parity runs under jax.enable_x64)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    state = nnx.state(module)
    cast = jax.tree.map(lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, state)
    nnx.update(module, cast)


@nnx.jit
def flax_forward(model, x):
    """A Flax model's output on NHWC `x`, jitted (the model's own mode)."""
    return model(x)
