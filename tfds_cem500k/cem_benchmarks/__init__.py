"""The `cem_benchmarks` TFDS dataset (registered on import): one config per segmentation benchmark."""

from tfds_cem500k.cem_benchmarks.cem_benchmarks_dataset_builder import Builder

__all__ = ["Builder"]
