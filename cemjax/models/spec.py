"""A model described as plain data, so checkpoints and CLIs can rebuild it: `ModelSpec` → `build_model`."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax.numpy as jnp
from flax import nnx

from cemjax.models.resnet import ResNet
from cemjax.models.unet import Unet


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """kind "resnet": `ResNet(depth, in_channels, num_classes, head)`; kind "unet": `Unet(depth, in_channels,
    classes)`. `dtype` is the compute dtype name ("float32" or "bfloat16")."""

    kind: Literal["resnet", "unet"] = "resnet"
    depth: int = 50
    in_channels: int = 1
    num_classes: int = 1000
    head: Literal["linear", "mlp"] | None = "linear"
    classes: int = 1
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown model spec field(s) {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}"
            )
        return cls(**data)


def build_model(spec: ModelSpec, *, seed: int = 0) -> ResNet | Unet:
    dtype = {"float32": None, "bfloat16": jnp.bfloat16}[spec.dtype]
    rngs = nnx.Rngs(seed)
    if spec.kind == "resnet":
        return ResNet(
            spec.depth,
            in_channels=spec.in_channels,
            num_classes=spec.num_classes,
            head=spec.head,
            dtype=dtype,
            rngs=rngs,
        )
    if spec.kind == "unet":
        return Unet(spec.depth, in_channels=spec.in_channels, classes=spec.classes, dtype=dtype, rngs=rngs)
    raise ValueError(f"model kind must be 'resnet' or 'unet', got {spec.kind!r}")


def abstract_model(spec: ModelSpec) -> ResNet | Unet:
    """The model with ShapeDtypeStructs instead of arrays (for restoring checkpoints without an init)."""
    return nnx.eval_shape(lambda: build_model(spec))
