"""Check an exported file the way a PyTorch user would: strict load into the real library, same outputs."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
from flax import nnx

from cemjax.convert.checkpoints import split_checkpoint
from cemjax.convert.files import read_weights
from cemjax.models.spec import ModelSpec


def torch_model_for(spec: ModelSpec):
    """The torchvision / segmentation_models_pytorch model that `spec`'s export loads into (ResNet encoders)."""
    # imported here: PyTorch, torchvision and smp are the optional `torch` extra
    import segmentation_models_pytorch as smp
    import torch
    import torchvision

    if spec.kind == "unet":
        return smp.Unet(spec.encoder, encoder_weights=None, in_channels=spec.in_channels, classes=spec.classes)
    net = getattr(torchvision.models, spec.encoder)(weights=None, num_classes=spec.num_classes)
    if spec.in_channels != 3:
        net.conv1 = torch.nn.Conv2d(spec.in_channels, 64, 7, stride=2, padding=3, bias=False)
    if spec.head == "mlp":
        hidden = net.fc.in_features
        net.fc = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), net.fc)
    elif spec.head is None:
        net.fc = torch.nn.Identity()
    return net


def verify_in_torch(model: nnx.Module, spec: ModelSpec, path: str | os.PathLike, size=(224, 224)) -> float:
    """Load `path` into the real torch model with strict=True (raises on any key or shape mismatch), run both
    models in eval mode on one random [1, C, H, W] input and return the max-abs output difference."""
    import torch  # the optional `torch` extra

    state, _ = split_checkpoint(read_weights(path))
    net = torch_model_for(spec)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    net.eval()
    x = np.random.default_rng(0).random((1, spec.in_channels, *size), dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    model.eval()
    actual = np.asarray(nnx.jit(lambda m, v: m(v))(model, jnp.asarray(x.transpose(0, 2, 3, 1))))
    if actual.ndim == 4:
        actual = actual.transpose(0, 3, 1, 2)
    return float(np.abs(actual - expected).max())
