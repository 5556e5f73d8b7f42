"""The eval-mode forward pass as one jitted function of (variables, x), compiled once and reused for every set of
weights of the same model: validation during training and `cemjax.segment` share it.

x is float32 [B, H, W, 1] with gray values in [0, 1] (uint8 / 255), H and W multiples of 32; the function
normalises with the model's norms (a 3-channel ImageNet encoder gets the gray image repeated) and returns logits
float32 [B, H, W, C]. `quantised` adds the paper's ⌊p · scale⌋ uint8 probabilities (`cemjax.seg.inference`),
so only one byte per class and pixel leaves the device.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from cemjax.seg.inference import _quantized_probabilities
from cemjax.seg.step import normalise


def eval_split(model: nnx.Module):
    """(graph, variables) of `model` in eval mode (BatchNorm uses its running statistics)."""
    model.eval()
    return nnx.split(model)


def make_forward(graph, norms):
    """`forward(variables, x) -> logits float32 [B, H, W, C]`, jitted."""
    norms = (tuple(norms[0]), tuple(norms[1]))

    @jax.jit
    def forward(variables, x):
        net = nnx.merge(graph, variables, copy=True)
        return net(normalise(x, norms)).astype(jnp.float32)

    return forward


def make_quantised_forward(graph, norms):
    """`forward(variables, x, scale) -> uint8 [B, H, W, C]` = ⌊probability · scale⌋ (scale 255 for one
    prediction per voxel, 255 / 3 per axis for orthoplane), jitted with `scale` static."""
    norms = (tuple(norms[0]), tuple(norms[1]))

    @functools.partial(jax.jit, static_argnames="scale")
    def forward(variables, x, scale: float):
        net = nnx.merge(graph, variables, copy=True)
        logits = net(normalise(x, norms)).astype(jnp.float32)
        return _quantized_probabilities(logits, x.shape[1], x.shape[2], scale)

    return forward
