"""Checkpoint layouts of the PyTorch side (docs/method.md §3) and conversions to and from cemjax models.

Layouts recognised by `detect_layout`:
- "moco": the reference MoCo `.pth.tar` — `module.encoder_q.*`, `module.encoder_k.*`, `module.queue`
  (128 × K), `module.queue_ptr`, head `fc.0` / `fc.2`; beside `epoch`, `arch`, `optimizer`, `norms`.
- "smp_unet": `encoder.*` + `decoder.*` + `segmentation_head.*` (segmentation_models_pytorch Unet).
- "smp_encoder": only `encoder.*` (the reference's MoCo encoder → UNet state, loaded with strict=False).
- "ddp": every key under `module.` (a DistributedDataParallel save; CEM1.5M SwAV: ResNet keys plus
  `projection_head.*` / `prototypes.*`, which `import_resnet` ignores and `import_swav` reads). The SwAV
  `.pth.tar` is {`epoch`, `state_dict`, `optimizer`, `norms`} (the reference also keeps an mlflow `run_id`).
- "torchvision": bare ResNet keys (`conv1.weight`, `layer1.0.conv1.weight`, …, optional `fc.*`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from cemjax.common.norms import CEM500K_NORMS
from cemjax.convert.files import CheckpointFormatError, read_weights, torch_available, write_object, write_weights
from cemjax.convert.state import (
    LoadReport,
    StemFold,
    WeightMismatchError,
    load_torch_state_dict,
    to_torch_state_dict,
)
from cemjax.models import ResNet, Unet

MOCO_Q, MOCO_K = "module.encoder_q.", "module.encoder_k."
SWAV_HEAD_PREFIXES = ("projection_head.", "prototypes.")


def split_checkpoint(obj: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A loaded checkpoint → (flat state_dict, the other top-level entries such as epoch, norms)."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(key), Mapping):
            return dict(obj[key]), {k: v for k, v in obj.items() if k != key}
    if all(isinstance(v, np.ndarray) for v in obj.values()):
        return dict(obj), {}
    raise CheckpointFormatError(
        "no state_dict found: expected a flat {name: tensor} dict or one under 'state_dict'/'model'; "
        f"top-level keys are {sorted(obj)[:10]}"
    )


def detect_layout(state: Mapping[str, np.ndarray]) -> str:
    keys = list(state)
    if any(k.startswith(MOCO_Q) for k in keys):
        return "moco"
    if any(k.startswith("encoder.") for k in keys) and any(k.startswith("decoder.") for k in keys):
        return "smp_unet"
    if keys and all(k.startswith("encoder.") for k in keys):
        return "smp_encoder"
    if keys and all(k.startswith("module.") for k in keys):
        return "ddp"
    return "torchvision"


def load_state(source: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A path or an already-loaded object → (flat state_dict, metadata)."""
    obj = read_weights(source) if isinstance(source, str | os.PathLike) else source
    return split_checkpoint(obj)


# ----------------------------------------------------------------------------------------------------------
# PyTorch → Flax
# ----------------------------------------------------------------------------------------------------------
def import_resnet(model: ResNet, source, *, stem: StemFold = "error") -> LoadReport:
    """Load ResNet weights from any layout into `model`: the MoCo query encoder, an smp Unet's encoder, a
    DDP/SwAV save or plain torchvision. Heads the model lacks (`fc`, SwAV heads) are ignored and reported."""
    state, _ = load_state(source)
    layout = detect_layout(state)
    prefix = {
        "moco": MOCO_Q,
        "smp_unet": "encoder.",
        "smp_encoder": "encoder.",
        "ddp": "module.",
        "torchvision": "",
    }
    prefix = prefix[layout]
    ignore = SWAV_HEAD_PREFIXES + (("fc.",) if model.fc is None else ())
    return load_torch_state_dict(model, state, prefix=prefix, stem=stem, ignore_prefixes=ignore)


def import_unet(model: Unet, source, *, stem: StemFold = "error") -> LoadReport:
    """A full smp Unet state_dict → `model`; any encoder-only layout → `model.encoder` (decoder untouched)."""
    state, _ = load_state(source)
    if detect_layout(state) == "smp_unet":
        return load_torch_state_dict(model, state, stem=stem)
    return import_resnet(model.encoder, state, stem=stem)


def import_moco(encoder_q: ResNet, encoder_k: ResNet, source) -> tuple[np.ndarray, int, dict[str, Any]]:
    """The reference MoCo checkpoint → both encoders (with MLP heads) in place.

    Returns (queue [K, dim] float32 — rows are keys, transposed from torch's [dim, K] — , queue_ptr, metadata
    such as `epoch`, `arch`, `norms`)."""
    state, meta = load_state(source)
    if detect_layout(state) != "moco":
        raise CheckpointFormatError(f"not a MoCo checkpoint: no '{MOCO_Q}*' keys")
    load_torch_state_dict(encoder_q, state, prefix=MOCO_Q, ignore_prefixes=())
    load_torch_state_dict(encoder_k, state, prefix=MOCO_K, ignore_prefixes=())
    queue = np.ascontiguousarray(state["module.queue"].T.astype(np.float32))
    return queue, int(np.asarray(state["module.queue_ptr"]).reshape(-1)[0]), meta


def _swav_torch_key(key: str) -> str:
    """A key of a module holding `encoder`, `projection_head`, `prototypes` → the reference's SwAV key."""
    return "module." + (key if key.startswith(SWAV_HEAD_PREFIXES) else key.removeprefix("encoder."))


def import_swav(model: nnx.Module, source) -> LoadReport:
    """The reference SwAV checkpoint (CEM1.5M) → a module with children `encoder` (a ResNet without head),
    `projection_head` and `prototypes` (cemjax.methods.swav.model.SwAVModel), strictly: every key is used."""
    state, _ = load_state(source)
    if detect_layout(state) != "ddp" or not any(k.startswith("module.prototypes.") for k in state):
        raise CheckpointFormatError("not a SwAV checkpoint: expected 'module.*' keys with 'module.prototypes.weight'")
    ours = {k: _swav_torch_key(k) for k in to_torch_state_dict(model)}
    renamed = {ours_key: state[theirs] for ours_key, theirs in ours.items() if theirs in state}
    unused = sorted(set(state) - set(ours.values()))
    if unused:
        raise WeightMismatchError(f"{len(unused)} key(s) of the SwAV checkpoint not used by the model: {unused[:5]}")
    return load_torch_state_dict(model, renamed)


# ----------------------------------------------------------------------------------------------------------
# Flax → PyTorch
# ----------------------------------------------------------------------------------------------------------
def export_resnet(model: ResNet, path: str | os.PathLike) -> Path:
    """torchvision `resnet{depth}` state_dict (`.pth` or `.safetensors`); loads with strict=True."""
    return write_weights(path, to_torch_state_dict(model))


def export_unet(model: Unet, path: str | os.PathLike) -> Path:
    """smp `Unet(f"resnet{depth}", in_channels, classes)` state_dict; loads with strict=True."""
    return write_weights(path, to_torch_state_dict(model))


def moco_state_dict(encoder_q: ResNet, encoder_k: ResNet, queue: np.ndarray, queue_ptr: int) -> dict:
    """The reference's DDP MoCo state_dict. queue: [K, dim] (rows are keys) → torch's [dim, K]."""
    state = to_torch_state_dict(encoder_q, prefix=MOCO_Q) | to_torch_state_dict(encoder_k, prefix=MOCO_K)
    state["module.queue"] = np.ascontiguousarray(np.asarray(queue, np.float32).T)
    state["module.queue_ptr"] = np.array([queue_ptr], np.int64)
    return state


def export_moco(
    path: str | os.PathLike,
    encoder_q: ResNet,
    encoder_k: ResNet,
    queue: np.ndarray,
    queue_ptr: int,
    *,
    epoch: int,
    norms: tuple[float, float] = CEM500K_NORMS,
    optimizer: Mapping[str, Any] | None = None,
) -> Path:
    """Write the reference `.pth.tar`: {epoch, arch, state_dict, optimizer, norms}."""
    payload = {
        "epoch": int(epoch),
        "arch": encoder_q.name,
        "state_dict": moco_state_dict(encoder_q, encoder_k, queue, queue_ptr),
        "optimizer": dict(optimizer or {}),
        "norms": [float(norms[0]), float(norms[1])],
    }
    return write_object(path, payload)


def swav_state_dict(model: nnx.Module) -> dict[str, np.ndarray]:
    """The reference's DDP SwAV state_dict of a module with `encoder`, `projection_head`, `prototypes`:
    `module.conv1.weight` …, `module.projection_head.{0,1,3}.*`, `module.prototypes.weight` [K, D]."""
    return {_swav_torch_key(k): v for k, v in to_torch_state_dict(model).items()}


def export_swav(path: str | os.PathLike, model: nnx.Module, *, epoch: int,
                norms: tuple[float, float] = CEM500K_NORMS) -> Path:  # fmt: skip
    """Write the reference SwAV `.pth.tar`: {epoch, state_dict, optimizer (empty), norms}."""
    payload = {"epoch": int(epoch), "state_dict": swav_state_dict(model), "optimizer": {},
               "norms": [float(norms[0]), float(norms[1])]}  # fmt: skip
    return write_object(path, payload)


def encoder_state(model: nnx.Module) -> dict[str, np.ndarray]:
    """An encoder's torch-named weights without its head (`fc`): torchvision keys, strict with `fc = Identity`."""
    return {k: v for k, v in to_torch_state_dict(model).items() if not k.startswith("fc.")}


def encoder_to_unet_state(model: nnx.Module) -> dict[str, np.ndarray]:
    """The reference's "encoder → UNet" rule: the encoder's keys without `fc`, prefixed `encoder.`."""
    return {f"encoder.{k}": v for k, v in encoder_state(model).items()}


def export_encoder_files(model: nnx.Module, out_dir: str | os.PathLike) -> dict[str, str]:
    """A pretrained encoder's weight files in `out_dir`, without its head. Written first and without torch:
    `encoder_torchvision.safetensors`. With torch installed also `encoder_torchvision.pth` (load with
    `net.fc = torch.nn.Identity(); net.load_state_dict(sd, strict=True)`) and `unet_encoder.pth` (the keys
    prefixed `encoder.` for segmentation_models_pytorch's Unet)."""
    out_dir = Path(out_dir)
    weights = encoder_state(model)
    paths = {"safetensors": write_weights(out_dir / "encoder_torchvision.safetensors", weights)}
    if torch_available():
        paths["torchvision"] = write_weights(out_dir / "encoder_torchvision.pth", weights)
        paths["unet_encoder"] = write_weights(out_dir / "unet_encoder.pth", encoder_to_unet_state(model))
    return {k: str(v) for k, v in paths.items()}
