"""Heads on pooled encoder features: torchvision's linear classifier and MoCoV2's projection MLP."""

from __future__ import annotations

import jax
from flax import nnx

from cemjax.models.init import TORCH_LINEAR_DEFAULT, torch_linear_bias
from cemjax.models.layers import at_least_float32

HEADS = ("linear", "mlp", None)


def linear(in_features: int, out_features: int, *, dtype=None, rngs: nnx.Rngs) -> nnx.Linear:
    """torch.nn.Linear with torch's default initialisation."""
    return nnx.Linear(in_features, out_features, kernel_init=TORCH_LINEAR_DEFAULT,
                      bias_init=torch_linear_bias(in_features), dtype=dtype, rngs=rngs)  # fmt: skip


class MLPHead(nnx.Dict):
    """MoCoV2's projection head, Linear(in, hidden) → ReLU → Linear(hidden, out). [B, in] → [B, out] float32.

    A dict with entries "0" and "2" so the parameter paths equal torch's `fc.0.*` / `fc.2.*` (the ReLU is
    slot 1 of torch's Sequential). The output is not normalised here; the MoCo loss L2-normalises.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, *, dtype=None, rngs: nnx.Rngs):
        super().__init__({"0": linear(in_features, hidden, dtype=dtype, rngs=rngs),
                          "2": linear(hidden, out_features, dtype=dtype, rngs=rngs)})  # fmt: skip

    def __call__(self, x: jax.Array) -> jax.Array:
        return at_least_float32(self["2"](nnx.relu(self["0"](x))))


def make_head(kind: str | None, in_features: int, num_classes: int, *, dtype=None, rngs: nnx.Rngs):
    """ "linear" → `fc = Linear(in, num_classes)`; "mlp" → `MLPHead(in, in, num_classes)`; None → no head."""
    if kind == "linear":
        return linear(in_features, num_classes, dtype=dtype, rngs=rngs)
    if kind == "mlp":
        return MLPHead(in_features, in_features, num_classes, dtype=dtype, rngs=rngs)
    if kind is None:
        return None
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
