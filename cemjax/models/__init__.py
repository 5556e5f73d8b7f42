"""Flax NNX models with torchvision / segmentation_models_pytorch topology and parameter names.

`build_model(ModelSpec(...))` builds any of them; encoders are registered by name in `cemjax.models.registry`.
"""

from cemjax.models.heads import MLPHead
from cemjax.models.layers import BatchNorm
from cemjax.models.registry import ENCODERS, build_encoder, register_encoder
from cemjax.models.resnet import ResNet
from cemjax.models.spec import ModelSpec, build_model
from cemjax.models.unet import Unet

__all__ = ["ENCODERS", "BatchNorm", "MLPHead", "ModelSpec", "ResNet", "Unet", "build_encoder", "build_model",
           "register_encoder"]  # fmt: skip
