"""The UNet to fine-tune and its encoder initialisation, as the reference's `finetune.py` chooses them.

- random: `Unet(depth, 1 channel)`, norms from the training split's pixel statistics (the reference puts each
  dataset's mean / std in its config);
- imagenet: a torchvision ResNet weights FILE → a 3-channel Unet (the gray image is repeated), ImageNet norms;
- cem500k or PATH: a 1-channel Unet whose encoder comes from a MoCo `.pth.tar` (the reference's checkpoint,
  norms read from it), a pretraining workdir (its latest Orbax checkpoint), torchvision / smp / DDP weights, a
  cemjax model directory (`spec.json`), or a full smp Unet state_dict (then the decoder is loaded too).

An encoder of the wrong architecture raises `WeightMismatchError` naming the first bad key and both shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from flax import nnx

from cemjax.convert.checkpoints import PAPER_NORMS, detect_layout, import_unet, load_state
from cemjax.convert.state import load_torch_state_dict, to_torch_state_dict
from cemjax.models import Unet
from cemjax.seg.config import IMAGENET_NORMS

Norms = tuple[tuple[float, ...], tuple[float, ...]]  # (mean per input channel, std per input channel), [0, 1] units


@dataclass(frozen=True)
class Initialised:
    model: Unet
    norms: Norms
    source: str  # one line: what the encoder was loaded from


def _dtype(name: str):
    import jax.numpy as jnp

    return {"float32": None, "bfloat16": jnp.bfloat16}[name]


def _unet(config, in_channels: int) -> Unet:
    m = config.model
    return Unet(m.depth, in_channels=in_channels, classes=m.num_classes, dtype=_dtype(m.compute_dtype),
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
    from cemjax.convert.flax_checkpoint import load_model

    loaded, spec = load_model(path)
    if spec.kind == "unet":
        load_torch_state_dict(model, to_torch_state_dict(loaded))
        return f"the whole UNet of model directory {path}"
    state = {f"encoder.{k}": v for k, v in to_torch_state_dict(loaded).items() if not k.startswith("fc.")}
    import_unet(model, state)
    return f"the encoder of model directory {path}"


def _from_pretraining(model: Unet, path: str) -> tuple[str, Norms]:
    from cemjax.train.export import restore_pretraining
    from cemjax.train.moco_step import encoders_from_state

    graphdef, state, config, step, _ = restore_pretraining(path)
    encoder_q, _ = encoders_from_state(graphdef, state)
    weights = {f"encoder.{k}": v for k, v in to_torch_state_dict(encoder_q).items() if not k.startswith("fc.")}
    import_unet(model, weights)
    mean, std = config.data.norms
    return f"the query encoder of pretraining step {step} in {path}", ((float(mean),), (float(std),))


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
            return Initialised(model, explicit or (PAPER_NORMS[:1], PAPER_NORMS[1:]), _from_model_dir(model, path))
        source, norms = _from_pretraining(model, path)
        return Initialised(model, explicit or norms, source)
    state, meta = load_state(path)
    layout = detect_layout(state)
    import_unet(model, state)
    norms = explicit or _as_norms(meta.get("norms")) or (PAPER_NORMS[:1], PAPER_NORMS[1:])
    what = "the whole smp Unet" if layout == "smp_unet" else f"the encoder ({layout} layout)"
    return Initialised(model, norms, f"{what} of {path}")
