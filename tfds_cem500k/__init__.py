"""TFDS datasets of cemjax. Importing this package registers `cem500k` and `cem_benchmarks`."""

from tfds_cem500k import cem500k  # noqa: F401

__all__ = ["cem500k"]
