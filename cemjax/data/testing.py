"""Tiny fixtures in the real layouts: a fake CEM500K release folder (for tests and the throughput benchmark)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

EDGE_SHAPES = ((224, 138), (200, 224))  # true-size edge patches, as the release keeps them


def fake_patch_shape(i: int) -> tuple[int, int]:
    """Patch i's (h, w) in `write_fake_cem500k`: every fifth one is an edge patch of `EDGE_SHAPES`."""
    return EDGE_SHAPES[(i // 5) % 2] if i % 5 == 4 else (224, 224)


def fake_source(i: int, sources: int | tuple[int, ...]) -> str:
    """Patch i's source in `write_fake_cem500k`: `source{i % sources}`, or with a tuple of sizes the first
    sizes[0] patches are source0, the next sizes[1] source1, …"""
    if isinstance(sources, int):
        return f"source{i % sources}"
    return f"source{int(np.searchsorted(np.cumsum(sources), i, side='right'))}"


def write_fake_cem500k(root: str | os.PathLike, n: int = 48, sources: int | tuple[int, ...] = 3,
                       seed: int = 0) -> list[Path]:  # fmt: skip
    """``n`` uint8 TIFFs in the released layout ``root/<source>/<source>-LOC-<axis>_<slice>_<box>.tiff``, at
    their true sizes (`fake_patch_shape`: most 224×224, some smaller edge patches), spread over `sources`
    (a count, or the number of patches of each source: `fake_source`).

    Pixel (0, 0) of patch i holds i % 256 and (0, 1) holds i // 256, so tests can tell patches apart.
    Returns the written paths in sorted order.
    """
    if not isinstance(sources, int) and sum(sources) != n:
        raise ValueError(f"source sizes {sources} do not add up to n={n}")
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        source = fake_source(i, sources)
        h, w = fake_patch_shape(i)
        y0, x0 = 224 * (i // 7), 224 * (i % 7)
        image = rng.integers(0, 256, (h, w), dtype=np.uint8)
        image[0, 0], image[0, 1] = i % 256, i // 256
        name = f"{source}-LOC-{'xy' if i % 2 else 'yz'}_{i}_{y0}-{y0 + h}_{x0}-{x0 + w}.tiff"
        path = Path(root) / source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, image)
        paths.append(path)
    return sorted(paths)


def patch_id(image: np.ndarray) -> int:
    """The index written by :func:`write_fake_cem500k` into an image [..., H, W, 1] (vectorised)."""
    image = np.asarray(image)
    return image[..., 0, 0, 0].astype(np.int64) + 256 * image[..., 0, 1, 0].astype(np.int64)
