"""ResNet-18/34/50 with torchvision's topology (v1.5: the stride sits on the 3×3 conv) and names.

Attribute paths equal torchvision's state_dict keys (`layer3.1.conv2`, `layer1.0.downsample.0`, `fc`), so
conversion to and from PyTorch is a per-leaf rename plus a transpose (see `cemjax.convert`). Input is NHWC.
"""

from __future__ import annotations

from typing import Literal

import jax
from flax import nnx

from cemjax.models.heads import make_head
from cemjax.models.layers import BatchNorm, at_least_float32, conv2d, max_pool_3x3_s2
from cemjax.models.registry import register_encoder

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
STAGE_WIDTHS = (64, 128, 256, 512)


def _downsample(in_ch: int, out_ch: int, stride: int, dtype, rngs: nnx.Rngs) -> nnx.List:
    """torchvision's `downsample = Sequential(conv1x1(stride), BatchNorm2d)` as `downsample.0` / `downsample.1`."""
    return nnx.List(
        [
            conv2d(in_ch, out_ch, 1, stride=stride, dtype=dtype, rngs=rngs),
            BatchNorm(out_ch, dtype=dtype),
        ]
    )


class BasicBlock(nnx.Module):
    """Two 3×3 convs (ResNet-18/34). [B,H,W,in] → [B,H/s,W/s,width]."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int, *, dtype=None, rngs: nnx.Rngs):
        out_ch = width * self.expansion
        self.conv1 = conv2d(in_ch, width, 3, stride=stride, padding=1, dtype=dtype, rngs=rngs)
        self.bn1 = BatchNorm(width, dtype=dtype)
        self.conv2 = conv2d(width, width, 3, padding=1, dtype=dtype, rngs=rngs)
        self.bn2 = BatchNorm(width, dtype=dtype)
        needs_projection = stride != 1 or in_ch != out_ch
        self.downsample = _downsample(in_ch, out_ch, stride, dtype, rngs) if needs_projection else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        identity = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        return nnx.relu(y + identity)


class Bottleneck(nnx.Module):
    """1×1 → 3×3 (strided, v1.5) → 1×1 ×4 (ResNet-50). [B,H,W,in] → [B,H/s,W/s,4·width]."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, *, dtype=None, rngs: nnx.Rngs):
        out_ch = width * self.expansion
        self.conv1 = conv2d(in_ch, width, 1, dtype=dtype, rngs=rngs)
        self.bn1 = BatchNorm(width, dtype=dtype)
        self.conv2 = conv2d(width, width, 3, stride=stride, padding=1, dtype=dtype, rngs=rngs)
        self.bn2 = BatchNorm(width, dtype=dtype)
        self.conv3 = conv2d(width, out_ch, 1, dtype=dtype, rngs=rngs)
        self.bn3 = BatchNorm(out_ch, dtype=dtype)
        needs_projection = stride != 1 or in_ch != out_ch
        self.downsample = _downsample(in_ch, out_ch, stride, dtype, rngs) if needs_projection else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = nnx.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        identity = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        return nnx.relu(y + identity)


class ResNet(nnx.Module):
    """torchvision ResNet. `depth` ∈ {18, 34, 50}; `in_channels` 1 (EM) or 3 (ImageNet).

    head: "linear" → `fc = Linear(C, num_classes)` (torchvision); "mlp" → MoCoV2's
    `fc = Sequential(Linear(C, C), ReLU, Linear(C, num_classes))` with keys `fc.0`, `fc.2`;
    None → no head, `__call__` returns the pooled features [B, C].
    C = 512 (18/34) or 2048 (50). `dtype=jnp.bfloat16` computes in bf16 with fp32 parameters and BN stats.
    Registered as encoders "resnet18", "resnet34", "resnet50" (`cemjax.models.registry`).
    """

    BLOCKS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")  # smp's encoder children with parameters
    FREEZE_POINTS = ("layer1", "layer2", "layer3", "layer4")

    def __init__(
        self,
        depth: int = 50,
        *,
        in_channels: int = 1,
        num_classes: int = 1000,
        head: Literal["linear", "mlp"] | None = "linear",
        dtype=None,
        rngs: nnx.Rngs,
    ):
        if depth not in STAGE_BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}")
        block_cls = Bottleneck if depth >= 50 else BasicBlock
        self.name, self.depth, self.in_channels, self.dtype = f"resnet{depth}", depth, in_channels, dtype
        self.conv1 = conv2d(in_channels, 64, 7, stride=2, padding=3, dtype=dtype, rngs=rngs)
        self.bn1 = BatchNorm(64, dtype=dtype)
        in_ch = 64
        for stage, (n_blocks, width) in enumerate(zip(STAGE_BLOCKS[depth], STAGE_WIDTHS, strict=True)):
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (j == 0 and stage > 0) else 1
                blocks.append(block_cls(in_ch, width, stride, dtype=dtype, rngs=rngs))
                in_ch = width * block_cls.expansion
            setattr(self, f"layer{stage + 1}", nnx.List(blocks))
        self.num_features = in_ch
        self.stage_channels = (64, *(w * block_cls.expansion for w in STAGE_WIDTHS))
        self.fc = make_head(head, in_ch, num_classes, dtype=dtype, rngs=rngs)

    def features(self, x: jax.Array) -> list[jax.Array]:
        """x: [B,H,W,in_channels] → the five smp-encoder skips, strides 2, 4, 8, 16, 32:
        [stem after ReLU (64), layer1, layer2, layer3, layer4] (channels `self.stage_channels`)."""
        x = x.astype(self.dtype or x.dtype)
        x = nnx.relu(self.bn1(self.conv1(x)))
        feats = [x]
        x = max_pool_3x3_s2(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                x = block(x)
            feats.append(x)
        return feats

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [B,H,W,in_channels] → logits [B, num_classes] (float32), or pooled features [B, C] if no head."""
        pooled = at_least_float32(self.features(x)[-1]).mean(axis=(1, 2))
        if self.fc is None:
            return pooled
        return at_least_float32(self.fc(pooled.astype(self.dtype or pooled.dtype)))


for _depth in STAGE_BLOCKS:
    register_encoder(f"resnet{_depth}", ResNet, depth=_depth)
