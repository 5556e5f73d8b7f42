"""Encoders by name and compute dtypes by name: the one place that turns a model name into a module.

An encoder is an `nnx.Module` class whose constructor takes `(*, in_channels, head, num_classes, dtype, rngs)`
(plus fixed options given at registration) and whose instances have
  - `__call__(x)`: x [B, H, W, in_channels] → head output [B, num_classes] float32, or the pooled features
    [B, num_features] when it has no head (`fc is None`);
  - `features(x)`: the five skips at strides 2, 4, 8, 16, 32 that the UNet decoder takes, with channel widths
    `stage_channels`;
  - `num_features` (pooled width), `fc` (the head or None), `name` (its registry name).
The class names its parameter-holding children input to output in `BLOCKS` (what freeze policies cut) and the
blocks a fine-tuning policy may start training from in `FREEZE_POINTS` (the policy is named after the block).

A new encoder is a module file that registers its class, `register_encoder("tiny", TinyNet)`, after which every
config can name it (`model.encoder="tiny"`); its PyTorch names follow the rules of `cemjax.convert.names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax.numpy as jnp
from flax import nnx

COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


@dataclass(frozen=True)
class EncoderEntry:
    cls: type
    options: dict = field(default_factory=dict)

    @property
    def blocks(self) -> tuple[str, ...]:
        return tuple(self.cls.BLOCKS)

    @property
    def freeze_points(self) -> tuple[str, ...]:
        return tuple(self.cls.FREEZE_POINTS)


ENCODERS: dict[str, EncoderEntry] = {}


def register_encoder(name: str, cls: type, **options) -> None:
    """Make `cls(**options, in_channels=, head=, num_classes=, dtype=, rngs=)` available as encoder `name`."""
    ENCODERS[name] = EncoderEntry(cls, options)


def encoder_entry(name: str) -> EncoderEntry:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name]


def compute_dtype(name: str):
    """ "float32" → None (compute in the parameters' float32), "bfloat16" → jnp.bfloat16."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute dtype {name!r}: use one of {', '.join(COMPUTE_DTYPES)}")
    return COMPUTE_DTYPES[name]


def build_encoder(
    name: str, *, in_channels: int = 1, head: str | None = None, num_classes: int = 1000, dtype: str = "float32",
    rngs: nnx.Rngs,
) -> nnx.Module:  # fmt: skip
    """The encoder registered as `name`. head: None (pooled features), "linear" or "mlp" (see `models.heads`);
    dtype: a compute dtype name (`COMPUTE_DTYPES`)."""
    entry = encoder_entry(name)
    return entry.cls(
        **entry.options, in_channels=in_channels, head=head, num_classes=num_classes, dtype=compute_dtype(dtype),
        rngs=rngs,
    )  # fmt: skip


def freeze_policies(name: str) -> tuple[str, ...]:
    """Fine-tuning policies of encoder `name`: "none" (encoder frozen), each freeze point (train from that block
    on), "all" (train everything)."""
    return ("none", *encoder_entry(name).freeze_points, "all")
