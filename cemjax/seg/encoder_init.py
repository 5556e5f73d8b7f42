"""The UNet to fine-tune and its encoder initialisation, as the reference's `finetune.py` chooses them.

- random: a 1-channel UNet, norms from the training split's pixel statistics (the reference puts each dataset's
  mean / std in its config);
- imagenet: a torchvision ResNet weights FILE → a 3-channel UNet (the gray image is repeated), ImageNet norms;
- cem500k or PATH: a 1-channel UNet whose encoder comes from a MoCo `.pth.tar` (the reference's checkpoint,
  norms read from it), a pretraining workdir of any method (`cemjax.methods.restore_encoder`), torchvision /
  smp / DDP weights, a cemjax model directory (`spec.json`), or a full smp Unet state_dict (decoder too).

An encoder of the wrong architecture raises `WeightMismatchError` naming the first bad key and both shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from flax import nnx

from cemjax import methods
from cemjax.common.norms import CEM500K_NORMS, IMAGENET_NORMS
from cemjax.convert.checkpoints import detect_layout, encoder_state, import_unet, load_state
from cemjax.convert.flax_checkpoint import load_model
from cemjax.convert.state import load_torch_state_dict, to_torch_state_dict
from cemjax.models import Unet

Norms = tuple[tuple[float, ...], tuple[float, ...]]  # (mean per input channel, std per input channel), [0, 1] units
PAPER_NORMS: Norms = ((CEM500K_NORMS[0],), (CEM500K_NORMS[1],))


@dataclass(frozen=True)
class Initialised:
    model: Unet
    norms: Norms
    source: str  # one line: what the encoder was loaded from


def _unet(config, in_channels: int) -> Unet:
    m = config.model
    return Unet(m.encoder, in_channels=in_channels, classes=m.num_classes, dtype=m.compute_dtype,
                rngs=nnx.Rngs(config.seed))  # fmt: skip


def split_norms(planes, max_planes: int = 256) -> Norms:
    """Mean / std of [0, 1] pixels over (up to `max_planes` evenly spaced) training planes."""
    n = len(planes)
    total, total_sq, count = 0.0, 0.0, 0
    for i in np.unique(np.linspace(0, n - 1, min(n, max_planes)).astype(int)):
        image = np.asarray(planes[int(i)][0], np.float64) / 255.0
        total, total_sq, count = total + image.sum(), total_sq + np.square(image).sum(), count + image.size
    mean = total / count
    return (float(mean),), (float(np.sqrt(max(total_sq / count - mean * mean, 1e-12))),)


def _as_norms(value) -> Norms | None:
    if value is None or len(value) != 2:
        return None
    mean, std = (tuple(float(v) for v in np.atleast_1d(np.asarray(x, np.float64))) for x in value)
    return mean, std


def _from_model_dir(model: Unet, path: str) -> str:
    loaded, spec = load_model(path)
    if spec.kind == "unet":
        load_torch_state_dict(model, to_torch_state_dict(loaded))
        return f"the whole UNet of model directory {path}"
    load_torch_state_dict(model.encoder, encoder_state(loaded))
    return f"the encoder of model directory {path}"


def initialise(config, planes=None) -> Initialised:
    """The UNet of `config` with its encoder initialised per `config.init`; `planes` (the training split, for
    random init's norms) is only read when `config.data.norms` is empty."""
    init, path = config.init, config.init_weights or config.init
    explicit = _as_norms(tuple(config.data.norms)) if len(config.data.norms) else None
    if init == "random":
        if explicit is None and planes is None:
            raise ValueError("init=random needs the training split (or data.norms) to set the normalisation")
        return Initialised(_unet(config, 1), explicit or split_norms(planes), "random initialisation")
    if not os.path.exists(path):
        raise FileNotFoundError(f"init weights {path!r} not found; pass weights=PATH to a local file (no downloads)")
    if init == "imagenet":
        model = _unet(config, 3)
        import_unet(model, path)
        return Initialised(model, explicit or IMAGENET_NORMS, f"ImageNet weights {path} (3 channels, gray repeated)")
    model = _unet(config, 1)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "spec.json")):
            return Initialised(model, explicit or PAPER_NORMS, _from_model_dir(model, path))
        encoder, (mean, std), source = methods.restore_encoder(path)
        load_torch_state_dict(model.encoder, encoder_state(encoder))
        return Initialised(model, explicit or ((mean,), (std,)), source)
    state, meta = load_state(path)
    layout = detect_layout(state)
    import_unet(model, state)
    norms = explicit or _as_norms(meta.get("norms")) or PAPER_NORMS
    what = "the whole smp Unet" if layout == "smp_unet" else f"the encoder ({layout} layout)"
    return Initialised(model, norms, f"{what} of {path}")
