"""A model described as plain data, so checkpoints and CLIs can rebuild it: `ModelSpec` → `build_model`."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from flax import nnx

from cemjax.models.registry import build_encoder, compute_dtype, encoder_entry
from cemjax.models.unet import Unet


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """kind "encoder": the registered `encoder` with `head` ("linear" | "mlp" | None) of `num_classes` outputs;
    kind "unet": `Unet(encoder, in_channels, classes)`. `dtype` is the compute dtype name ("float32",
    "bfloat16"; parameters stay float32)."""

    kind: Literal["encoder", "unet"] = "encoder"
    encoder: str = "resnet50"
    in_channels: int = 1
    num_classes: int = 1000
    head: Literal["linear", "mlp"] | None = "linear"
    classes: int = 1
    dtype: str = "float32"

    def __post_init__(self):
        if self.kind not in ("encoder", "unet"):
            raise ValueError(f"model kind must be 'encoder' or 'unet', got {self.kind!r}")
        encoder_entry(self.encoder)
        compute_dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Also reads the layout of cemjax 0.1 model directories ({"kind": "resnet", "depth": 50, …})."""
        data = dict(data)
        if "depth" in data:
            data.setdefault("encoder", f"resnet{data.pop('depth')}")
        if data.get("kind") == "resnet":
            data["kind"] = "encoder"
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown model spec field(s) {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}"
            )
        return cls(**data)


def build_model(spec: ModelSpec, *, seed: int = 0) -> nnx.Module:
    rngs = nnx.Rngs(seed)
    if spec.kind == "unet":
        return Unet(spec.encoder, in_channels=spec.in_channels, classes=spec.classes, dtype=spec.dtype, rngs=rngs)
    return build_encoder(spec.encoder, in_channels=spec.in_channels, head=spec.head, num_classes=spec.num_classes,
                         dtype=spec.dtype, rngs=rngs)  # fmt: skip


def abstract_model(spec: ModelSpec) -> nnx.Module:
    """The model with ShapeDtypeStructs instead of arrays (for restoring checkpoints without an init)."""
    return nnx.eval_shape(lambda: build_model(spec))
