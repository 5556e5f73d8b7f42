"""TFDS datasets of cemjax. Importing this package registers `cem500k` and `cem_benchmarks`."""

from tfds_cem500k import cem500k, cem_benchmarks  # noqa: F401

__all__ = ["cem500k", "cem_benchmarks"]
