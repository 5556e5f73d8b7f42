"""The `cem500k` TFDS dataset (registered on import)."""

from tfds_cem500k.cem500k.cem500k_dataset_builder import Builder

__all__ = ["Builder"]
