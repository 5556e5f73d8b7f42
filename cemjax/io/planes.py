"""Streamed access to the planes of an `EMArray`: z-slabs for statistics, blocks of cross-sections.

Axis names follow the reference: 'xy' planes are data[z] (Y×X), 'xz' planes data[:, y] (Z×X), 'yz' planes
data[:, :, x] (Z×Y). A 2D image is one 'xy' plane. Reads never exceed about `budget` bytes at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cemjax.io.convert import Stats, rgb_to_gray, scan_stats
from cemjax.io.formats import EMArray

AXES = ("xy", "xz", "yz")
DEFAULT_BUDGET = 128 << 20  # bytes read per block


def _raw_itemsize(em: EMArray) -> int:
    return em.dtype.itemsize * (em.data.shape[-1] if em.rgb else 1)


def _gray(block: np.ndarray, rgb: bool) -> np.ndarray:
    return rgb_to_gray(block) if rgb else np.asarray(block)


def iter_slabs(em: EMArray, budget: int = DEFAULT_BUDGET, step: int = 1) -> Iterator[np.ndarray]:
    """Yield gray z-slabs [n, Y, X] (a 2D image yields one [1, H, W]); `step` > 1 visits every step-th."""
    if em.ndim == 2:
        yield _gray(np.asarray(em.data[...]), em.rgb)[None]
        return
    z, y, x = em.shape
    n = max(1, budget // max(1, y * x * _raw_itemsize(em)))
    for z0 in range(0, z, n * step):
        yield _gray(np.asarray(em.data[z0 : z0 + n]), em.rgb)


def volume_stats(em: EMArray, budget: int = DEFAULT_BUDGET) -> Stats:
    """Finite min/max and finiteness of the whole array, streamed slab by slab.

    Floats need the exact whole-file range (they are min–max scaled), so every voxel is read. For integers
    a sparse sample of slabs decides; only a sample that looks constant is confirmed by a full pass.
    """
    if em.dtype.kind == "f" or em.ndim == 2:
        return scan_stats(iter_slabs(em, budget))
    n_slabs = -(-em.shape[0] // max(1, budget // max(1, em.shape[1] * em.shape[2] * _raw_itemsize(em))))
    sampled = scan_stats(iter_slabs(em, budget, step=max(1, n_slabs // 8)))
    if not sampled.constant:
        return sampled
    return scan_stats(iter_slabs(em, budget))


def plane_count(em: EMArray, axis: str) -> int:
    """Number of planes along `axis` ('xy' for 2D images: 1)."""
    if em.ndim == 2:
        return 1
    return em.shape[AXES.index(axis)]


def plane_shape(em: EMArray, axis: str) -> tuple[int, int]:
    """(H, W) of one plane along `axis`."""
    if em.ndim == 2:
        return em.shape
    z, y, x = em.shape
    return {"xy": (y, x), "xz": (z, x), "yz": (z, y)}[axis]


def planes_per_block(em: EMArray, axis: str, budget: int = DEFAULT_BUDGET) -> int:
    """How many planes along `axis` fit in one read of about `budget` bytes (≥ 1)."""
    h, w = plane_shape(em, axis)
    return max(1, budget // max(1, h * w * _raw_itemsize(em)))


def read_plane_block(em: EMArray, axis: str, start: int, stop: int) -> np.ndarray:
    """Gray planes [stop − start, H, W] (raw dtype) along `axis`, read with one slicing call.

    Always an in-memory copy (never a view of a memory map), so it outlives `em.close()`.
    """
    if em.ndim == 2:
        block = np.asarray(em.data[...])[None]
    elif axis == "xy":
        block = np.asarray(em.data[start:stop])
    elif axis == "xz":
        block = np.moveaxis(np.asarray(em.data[:, start:stop]), 1, 0)
    elif axis == "yz":
        block = np.moveaxis(np.asarray(em.data[:, :, start:stop]), 2, 0)
    else:
        raise ValueError(f"unknown axis {axis!r}")
    return np.array(_gray(block, em.rgb), copy=True)
