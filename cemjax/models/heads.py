"""Projection heads."""

from __future__ import annotations

import jax
from flax import nnx

from cemjax.models.init import TORCH_LINEAR_DEFAULT, torch_linear_bias
from cemjax.models.layers import at_least_float32


class MLPHead(nnx.Dict):
    """MoCoV2's projection head, Linear(in, hidden) → ReLU → Linear(hidden, out). [B, in] → [B, out] float32.

    A dict with entries "0" and "2" so the parameter paths equal torch's `fc.0.*` / `fc.2.*` (the ReLU is
    slot 1 of torch's Sequential). The output is not normalised here; the MoCo loss L2-normalises.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, *, dtype=None, rngs: nnx.Rngs):
        def linear(i, o):
            return nnx.Linear(
                i,
                o,
                kernel_init=TORCH_LINEAR_DEFAULT,
                bias_init=torch_linear_bias(i),
                dtype=dtype,
                rngs=rngs,
            )

        super().__init__({"0": linear(in_features, hidden), "2": linear(hidden, out_features)})

    def __call__(self, x: jax.Array) -> jax.Array:
        return at_least_float32(self["2"](nnx.relu(self["0"](x))))
