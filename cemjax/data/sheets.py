"""PNG sheets of augmented views (for the README and for eyeballing a recipe)."""

from __future__ import annotations

import os

import jax
import numpy as np

from cemjax.synthetic import write_contact_sheet


def _to_u8(view: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.round(np.clip(view * std + mean, 0, 1) * 255).astype(np.uint8)


def write_mocov2_sheet(path: str | os.PathLike, images: np.ndarray, n_views: int = 4, seed: int = 0) -> str:
    """One row per image: the uint8 [N, H, W, 1] input, then ``n_views`` MoCoV2 views (de-normalised, not rescaled)."""
    from cemjax.data.augment import CEM500K_MEAN, CEM500K_STD, mocov2_views_jit

    f = mocov2_views_jit
    views = [np.asarray(f(images, jax.random.key(seed + i))[0])[..., 0] for i in range((n_views + 1) // 2)]
    views += [np.asarray(f(images, jax.random.key(seed + i))[1])[..., 0] for i in range(n_views // 2)]
    tiles, titles = [], []
    for j in range(images.shape[0]):
        tiles.append(images[j, ..., 0])
        titles.append("input")
        for i in range(n_views):
            tiles.append(_to_u8(views[i][j], CEM500K_MEAN, CEM500K_STD))
            titles.append(f"view {i + 1}")
    return write_contact_sheet(path, tiles, titles=titles, ncols=n_views + 1, tile_size=112)
