"""The one table of name and layout rules between cemjax (Flax NNX) and PyTorch state_dicts.

cemjax modules are built so that a parameter's attribute path, joined with dots, is already the torch
module path (`layer1.0.downsample.1`, `decoder.blocks.3.conv2.0`, `fc.2`). What differs is the leaf:

| flax leaf (shape)                 | torch key          | torch shape           |
|-----------------------------------|--------------------|-----------------------|
| Conv `kernel` [kh, kw, in, out]   | `weight`           | [out, in, kh, kw]     |
| Linear `kernel` [in, out]         | `weight`           | [out, in]             |
| `bias`, BatchNorm `weight`, `bias`, `running_mean`, `running_var` | same | same      |
| BatchNorm `num_batches_tracked` int32 | same           | int64                 |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Transpose from flax to torch by kernel rank, and its inverse.
_TO_TORCH_AXES = {4: (3, 2, 0, 1), 2: (1, 0)}
_TO_FLAX_AXES = {4: (2, 3, 1, 0), 2: (1, 0)}


def torch_key(path: Sequence[str | int]) -> str:
    """Flax variable path → torch state_dict key, e.g. ('layer1', 0, 'conv1', 'kernel') → 'layer1.0.conv1.weight'."""
    *module, leaf = (str(p) for p in path)
    return ".".join([*module, "weight" if leaf == "kernel" else leaf])


def to_torch_layout(path: Sequence[str | int], value: np.ndarray) -> np.ndarray:
    """A flax array → the array torch stores under `torch_key(path)` (kernels transposed, counters int64)."""
    leaf = str(path[-1])
    if leaf == "kernel":
        return np.ascontiguousarray(np.transpose(value, _TO_TORCH_AXES[value.ndim]))
    if leaf == "num_batches_tracked":
        return np.asarray(value, dtype=np.int64)
    return np.asarray(value)


def to_flax_layout(path: Sequence[str | int], value: np.ndarray) -> np.ndarray:
    """The inverse of `to_torch_layout` (dtype is fixed later by the target variable)."""
    if str(path[-1]) == "kernel":
        return np.transpose(value, _TO_FLAX_AXES[value.ndim])
    return np.asarray(value)


def torch_shape_for(path: Sequence[str | int], flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape torch has for a flax variable of `flax_shape` (for messages and checks)."""
    if str(path[-1]) == "kernel":
        return tuple(flax_shape[i] for i in _TO_TORCH_AXES[len(flax_shape)])
    return tuple(flax_shape)
