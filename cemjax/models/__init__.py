"""Flax NNX models with torchvision / segmentation_models_pytorch topology and parameter names."""

from cemjax.models.heads import MLPHead
from cemjax.models.layers import BatchNorm
from cemjax.models.resnet import ResNet
from cemjax.models.unet import Unet

__all__ = ["BatchNorm", "MLPHead", "ResNet", "Unet"]
