"""The SwAV network: an encoder (no head) → projection MLP with BatchNorm → L2-normalised embedding →
prototypes, with the reference's module names (`projection_head.0/1/3`, `prototypes`), so that the CEM1.5M
checkpoint's keys are `module.` + the encoder's torchvision keys + these (`cemjax.convert.export_swav`)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from cemjax.models.heads import linear
from cemjax.models.init import TORCH_LINEAR_DEFAULT
from cemjax.models.layers import BatchNorm, at_least_float32, l2_normalize
from cemjax.models.registry import build_encoder


class ProjectionHead(nnx.Dict):
    """Linear(in, hidden) → BatchNorm1d → ReLU → Linear(hidden, out) as torch's Sequential slots 0, 1, (2), 3.
    [N, in] → [N, out] float32."""

    def __init__(self, in_features: int, hidden: int, out_features: int, *, dtype=None, rngs: nnx.Rngs):
        super().__init__({"0": linear(in_features, hidden, dtype=dtype, rngs=rngs),
                          "1": BatchNorm(hidden, dtype=dtype),
                          "3": linear(hidden, out_features, dtype=dtype, rngs=rngs)})  # fmt: skip

    def __call__(self, x: jax.Array) -> jax.Array:
        return at_least_float32(self["3"](nnx.relu(self["1"](self["0"](x)))))


class SwAVModel(nnx.Module):
    """encoder (a registry name, no head) + projection head (`hidden` 0: one Linear, as the reference allows) +
    `prototypes` (Linear(out, K) without bias, float32). `embed(views)` → (embeddings, scores)."""

    def __init__(self, encoder: str, *, in_channels: int = 1, hidden: int = 2048, out_features: int = 128,
                 num_prototypes: int = 3000, dtype: str = "float32", rngs: nnx.Rngs):  # fmt: skip
        self.encoder = build_encoder(encoder, in_channels=in_channels, head=None, dtype=dtype, rngs=rngs)
        width, compute = self.encoder.num_features, self.encoder.dtype
        if hidden:
            self.projection_head = ProjectionHead(width, hidden, out_features, dtype=compute, rngs=rngs)
        else:
            self.projection_head = linear(width, out_features, dtype=compute, rngs=rngs)
        self.prototypes = nnx.Linear(out_features, num_prototypes, use_bias=False, kernel_init=TORCH_LINEAR_DEFAULT,
                                     rngs=rngs)  # fmt: skip

    def embed(self, views: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
        """views: V arrays [B, S_v, S_v, C] → (unit embeddings float32 [V·B, D], prototype scores float32
        [V·B, K]), rows view-major. Consecutive views of one size go through the encoder together (one set of
        BatchNorm statistics per resolution, as the reference batches them); the head sees all rows at once."""
        pooled, start = [], 0
        while start < len(views):
            stop = start
            while stop < len(views) and views[stop].shape[1:] == views[start].shape[1:]:
                stop += 1
            pooled.append(at_least_float32(self.encoder(jnp.concatenate(views[start:stop]))))
            start = stop
        h = jnp.concatenate(pooled)
        z = l2_normalize(at_least_float32(self.projection_head(h.astype(self.encoder.dtype or h.dtype))))
        return z, self.prototypes(z)
