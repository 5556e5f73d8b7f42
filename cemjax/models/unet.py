"""UNet with segmentation_models_pytorch's topology (`smp.Unet`, defaults) over a registered encoder.

Paths equal smp's state_dict keys: `encoder.*` (torchvision names, no fc), `decoder.blocks.{i}.conv{1,2}.0`
(3×3 conv, no bias) and `.1` (BatchNorm), `segmentation_head.0` (3×3 conv with bias). Input NHWC with H, W
multiples of 32, as smp requires.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from cemjax.models.init import KAIMING_UNIFORM_FAN_IN, XAVIER_UNIFORM
from cemjax.models.layers import BatchNorm, at_least_float32, conv2d
from cemjax.models.registry import build_encoder, compute_dtype

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)


def resize_nearest(x: jax.Array, height: int, width: int) -> jax.Array:
    """torch `F.interpolate(mode="nearest", size=(height, width))`: source index ⌊dst · in/out⌋. [B,h,w,C]→[B,H,W,C]."""
    _, h, w, _ = x.shape
    if (height, width) == (2 * h, 2 * w):
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    rows = jnp.floor(jnp.arange(height) * (h / height)).astype(jnp.int32)
    cols = jnp.floor(jnp.arange(width) * (w / width)).astype(jnp.int32)
    return x[:, jnp.minimum(rows, h - 1)][:, :, jnp.minimum(cols, w - 1)]


def _conv_bn_relu(in_ch: int, out_ch: int, dtype, rngs: nnx.Rngs) -> nnx.List:
    """smp's `Conv2dReLU` = Sequential(conv3×3 no bias, BatchNorm2d, ReLU) → entries `0` and `1`."""
    conv = conv2d(in_ch, out_ch, 3, padding=1, kernel_init=KAIMING_UNIFORM_FAN_IN, dtype=dtype, rngs=rngs)
    return nnx.List([conv, BatchNorm(out_ch, dtype=dtype)])


def _apply_conv_bn_relu(layers: nnx.List, x: jax.Array) -> jax.Array:
    return nnx.relu(layers[1](layers[0](x)))


class DecoderBlock(nnx.Module):
    """Upsample (nearest) to the skip's size, concatenate the skip, two conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, *, dtype=None, rngs: nnx.Rngs):
        self.conv1 = _conv_bn_relu(in_ch + skip_ch, out_ch, dtype, rngs)
        self.conv2 = _conv_bn_relu(out_ch, out_ch, dtype, rngs)

    def __call__(self, x: jax.Array, height: int, width: int, skip: jax.Array | None) -> jax.Array:
        x = resize_nearest(x, height, width)
        if skip is not None:
            x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
        return _apply_conv_bn_relu(self.conv2, _apply_conv_bn_relu(self.conv1, x))


class UnetDecoder(nnx.Module):
    """smp `UnetDecoder` without centre block or attention; block i: in = [head, *decoder[:-1]][i],
    skip = [layer3, layer2, layer1, stem, none][i]."""

    def __init__(self, encoder_channels, decoder_channels, *, dtype=None, rngs: nnx.Rngs):
        reversed_ch = list(encoder_channels)[::-1]  # (layer4, layer3, layer2, layer1, stem)
        in_chs = [reversed_ch[0], *decoder_channels[:-1]]
        skip_chs = [*reversed_ch[1:], 0]
        self.blocks = nnx.List(
            [
                DecoderBlock(i, s, o, dtype=dtype, rngs=rngs)
                for i, s, o in zip(in_chs, skip_chs, decoder_channels, strict=True)
            ]
        )

    def __call__(self, features: list[jax.Array], height: int, width: int) -> jax.Array:
        """features: encoder skips at strides 2..32; returns [B, height, width, decoder_channels[-1]]."""
        skips = features[::-1]  # deepest first
        x = skips[0]
        sizes = [f.shape[1:3] for f in skips[1:]] + [(height, width)]
        for i, block in enumerate(self.blocks):
            skip = skips[i + 1] if i + 1 < len(skips) else None
            x = block(x, *sizes[i], skip)
        return x


class Unet(nnx.Module):
    """smp.Unet(encoder_name, in_channels, classes): [B,H,W,in_channels] → logits [B,H,W,classes]. `encoder` is a
    name of `cemjax.models.registry` ("resnet50"); `dtype` a compute dtype name ("float32", "bfloat16")."""

    def __init__(
        self,
        encoder: str = "resnet50",
        *,
        in_channels: int = 1,
        classes: int = 1,
        decoder_channels=DEFAULT_DECODER_CHANNELS,
        dtype: str = "float32",
        rngs: nnx.Rngs,
    ):
        self.classes = classes
        self.encoder = build_encoder(encoder, in_channels=in_channels, head=None, dtype=dtype, rngs=rngs)
        dtype = compute_dtype(dtype)
        self.decoder = UnetDecoder(self.encoder.stage_channels, decoder_channels, dtype=dtype, rngs=rngs)
        head = nnx.Conv(
            decoder_channels[-1],
            classes,
            kernel_size=(3, 3),
            padding=((1, 1), (1, 1)),
            kernel_init=XAVIER_UNIFORM,
            bias_init=nnx.initializers.zeros_init(),
            dtype=dtype,
            param_dtype=jnp.float32,
            rngs=rngs,
        )
        self.segmentation_head = nnx.List([head])

    def __call__(self, x: jax.Array) -> jax.Array:
        _, height, width, _ = x.shape
        if height % 32 or width % 32:
            raise ValueError(f"Unet input height and width must be multiples of 32, got {height}×{width}")
        y = self.decoder(self.encoder.features(x), height, width)
        return at_least_float32(self.segmentation_head[0](y))
