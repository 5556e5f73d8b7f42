"""`model.json`: what a fine-tuned model directory says about itself, beside `spec.json` and `state/`.

    {"format": "cemjax-model/1",
     "architecture": {"kind": "unet", "encoder": "resnet18", "in_channels": 1, "classes": 1, "dtype": "float32"},
     "classes": ["background", "membrane"],     names of label values 0 .. K-1 (the labels `segment` writes)
     "outputs": 1,                              model channels: 1 = binary (sigmoid > threshold), else softmax
     "threshold": 0.5,
     "input": {"channels": 1, "conversion": "...", "norms": {"mean": [...], "std": [...]}},
     "eval_mode": "stack",                      how it is applied by default: 2d, stack or orthoplane
     "spacing_nm": [50, 4, 4] | null,           voxel size of the training data, if the files said
     "provenance": {"init", "init_source", "finetune_layer", "dataset", "iterations", "steps", "seed",
                    "validation", "cemjax_version", "date"}}

The trainer writes it; `cemjax.load_predictor` refuses a directory without it, or whose spec does not build.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass

from cemjax import __version__
from cemjax.common.errors import InputError
from cemjax.common.files import write_json
from cemjax.models.spec import ModelSpec

FORMAT = "cemjax-model/1"
FILE = "model.json"
CONVERSION = "cemjax.io.to_uint8 (docs/method.md §1.1; RGB to gray), then / 255 and (x - mean) / std"
REQUIRED = ("architecture", "classes", "outputs", "input", "eval_mode")


@dataclass(frozen=True)
class ModelInfo:
    """The facts of model.json (see the module docstring). norms: ((mean per channel), (std per channel))."""

    spec: ModelSpec
    classes: tuple[str, ...]
    norms: tuple[tuple[float, ...], tuple[float, ...]]
    eval_mode: str
    threshold: float = 0.5
    input_channels: int = 1
    spacing_nm: tuple[float, float, float] | None = None
    provenance: dict | None = None

    @property
    def outputs(self) -> int:
        return self.spec.classes

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "architecture": self.spec.to_dict(), "classes": list(self.classes),
            "outputs": self.outputs, "threshold": self.threshold,
            "input": {"channels": self.input_channels, "conversion": CONVERSION,
                      "norms": {"mean": list(self.norms[0]), "std": list(self.norms[1])}},
            "eval_mode": self.eval_mode, "spacing_nm": list(self.spacing_nm) if self.spacing_nm else None,
            "provenance": self.provenance or {},
        }  # fmt: skip


def provenance(config, init_source: str, policy: str, dataset: dict, steps: int, validation: dict | None) -> dict:
    """The training record of model.json."""
    return {
        "init": config.init, "init_source": init_source, "finetune_layer": policy, "dataset": dataset,
        "iterations": config.iterations, "steps": steps, "seed": config.seed, "crop": config.crop,
        "batch_size": config.batch_size, "validation": validation, "cemjax_version": __version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip


def write_model_info(model_dir: str | os.PathLike, info: ModelInfo) -> str:
    path = os.path.join(os.fspath(model_dir), FILE)
    write_json(path, info.to_dict())
    return path


def read_model_info(model_dir: str | os.PathLike) -> ModelInfo:
    """model.json and spec.json of `model_dir`, checked against each other; InputError (one line) otherwise."""
    model_dir = os.fspath(model_dir)
    path, spec_path = os.path.join(model_dir, FILE), os.path.join(model_dir, "spec.json")
    if not os.path.isdir(model_dir):
        raise InputError(f"{model_dir}: no such model directory")
    if not os.path.isfile(path):
        raise InputError(f"{model_dir}: no {FILE}, so its classes and normalisation are unknown; fine-tune it with "
                         f"cemjax (which writes {FILE}) or add one (see cemjax.seg.model_info)")  # fmt: skip
    try:
        with open(path) as f:
            data = json.load(f)
        with open(spec_path) as f:
            spec = ModelSpec.from_dict(json.load(f))
    except FileNotFoundError:
        raise InputError(f"{model_dir}: no spec.json (the architecture); not a whole cemjax model directory") from None
    except (ValueError, TypeError) as e:
        raise InputError(f"{model_dir}: {FILE} or spec.json does not describe a model ({e})") from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}; rewrite it with cemjax.seg.model_info")
    if spec.kind != "unet":
        raise InputError(f"{model_dir}: spec.json describes a {spec.kind} ({spec.encoder}), not a segmentation UNet")
    if ModelSpec.from_dict(data["architecture"]) != spec or int(data["outputs"]) != spec.classes:
        raise InputError(f"{model_dir}: {FILE} says {data['architecture']} but spec.json says {spec.to_dict()}")
    norms = data["input"].get("norms", {})
    mean, std = tuple(norms.get("mean", ())), tuple(norms.get("std", ()))
    if len(mean) != spec.in_channels or len(std) != spec.in_channels:
        raise InputError(f"{path}: input.norms need {spec.in_channels} mean/std values for the "
                         f"{spec.in_channels}-channel encoder, got {len(mean)}/{len(std)}")  # fmt: skip
    classes = tuple(data["classes"])
    if len(classes) != max(2, spec.classes):
        raise InputError(f"{path}: {len(classes)} class names for {spec.classes} output(s)")
    spacing = data.get("spacing_nm")
    return ModelInfo(spec, classes, (mean, std), data["eval_mode"], float(data.get("threshold", 0.5)),
                     int(data["input"].get("channels", 1)), tuple(spacing) if spacing else None,
                     data.get("provenance"))  # fmt: skip
