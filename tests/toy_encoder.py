"""A new encoder in one file: registering it is all it takes for every config to name it ("tiny_cnn").

Five stride-2 conv-BN-ReLU blocks (widths 8 … 128) give the UNet its five skips; its PyTorch names follow the
generic rules of `cemjax.convert.names` (`stem.0.weight`, `stem.1.running_mean`, …), so it needs no table.
"""

from __future__ import annotations

import jax
from flax import nnx

from cemjax.models.heads import make_head
from cemjax.models.layers import BatchNorm, at_least_float32, conv2d
from cemjax.models.registry import register_encoder


class TinyCNN(nnx.Module):
    BLOCKS = ("stem", "stage1", "stage2", "stage3", "stage4")
    FREEZE_POINTS = ("stage2", "stage3", "stage4")

    def __init__(self, *, in_channels: int, head, num_classes: int, dtype, rngs: nnx.Rngs, width: int = 8):
        self.name, self.dtype = "tiny_cnn", dtype
        self.stage_channels = tuple(width * 2**i for i in range(5))
        self.num_features = self.stage_channels[-1]
        ins = (in_channels, *self.stage_channels[:-1])
        for name, c_in, c_out in zip(self.BLOCKS, ins, self.stage_channels, strict=True):
            block = [conv2d(c_in, c_out, 3, stride=2, padding=1, dtype=dtype, rngs=rngs), BatchNorm(c_out, dtype=dtype)]
            setattr(self, name, nnx.List(block))
        self.fc = make_head(head, self.num_features, num_classes, dtype=dtype, rngs=rngs)

    def features(self, x: jax.Array) -> list[jax.Array]:
        feats = []
        x = x.astype(self.dtype or x.dtype)
        for name in self.BLOCKS:
            conv, bn = getattr(self, name)
            x = nnx.relu(bn(conv(x)))
            feats.append(x)
        return feats

    def __call__(self, x: jax.Array) -> jax.Array:
        pooled = at_least_float32(self.features(x)[-1]).mean(axis=(1, 2))
        return pooled if self.fc is None else at_least_float32(self.fc(pooled.astype(self.dtype or pooled.dtype)))


register_encoder("tiny_cnn", TinyCNN)
