"""MoCoV2's input: two views of every patch under the same recipe (docs/method.md §2)."""

from __future__ import annotations

import os

import jax
import numpy as np

from cemjax.common.norms import CEM500K_NORMS
from cemjax.common.pictures import write_contact_sheet
from cemjax.data.augment import ViewRecipe, make_views
from cemjax.data.canvas import on_canvas

MOCOV2_VIEW = ViewRecipe()  # the recipe's defaults are MoCoV2's


def mocov2_views(
    images: jax.Array, key: jax.Array, valid: jax.Array | None = None, *, size: int = 224,
    mean: float = CEM500K_NORMS[0], std: float = CEM500K_NORMS[1],
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Two MoCoV2 views of a batch: uint8 [B, H, W, 1] canvases (`valid` [B, 2]: each patch's true h, w; None:
    the whole canvas) → (float32 [B, size, size, 1]) × 2, normalised."""
    return make_views(images, key, valid, sizes=(size, size), recipes=(MOCOV2_VIEW, MOCOV2_VIEW), mean=mean,
                      std=std)  # fmt: skip


mocov2_views_jit = jax.jit(mocov2_views, static_argnames=("size", "mean", "std"))


def view_tiles(images: np.ndarray, n_views: int = 4, seed: int = 0, size: int = 224,
               norms: tuple[float, float] = CEM500K_NORMS, valid: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Per image its `n_views` MoCoV2 views as uint8 (de-normalised, not rescaled): uint8 [N, H, W, 1] canvases
    (`valid` [N, 2] true sizes) → uint8 [N, n_views, size, size]; views 2k and 2k + 1 are the query and key of
    key `seed + k`."""
    pairs = [mocov2_views_jit(images, jax.random.key(seed + k), valid, size=size, mean=norms[0], std=norms[1])
             for k in range((n_views + 1) // 2)]  # fmt: skip
    views = [np.asarray(v)[..., 0] for pair in pairs for v in pair][:n_views]
    return np.round(np.clip(np.stack(views, 1) * norms[1] + norms[0], 0, 1) * 255).astype(np.uint8)


def write_mocov2_sheet(path: str | os.PathLike, images: list[np.ndarray], n_views: int = 4, seed: int = 0,
                       size: int = 224) -> str:  # fmt: skip
    """PNG, one row per image: the uint8 [h, w, 1] input (any sizes), then `n_views` of its MoCoV2 views."""
    canvas, valid = on_canvas(images)
    views = view_tiles(canvas, n_views, seed, size=size, valid=valid)
    tiles, titles = [], []
    for j, image in enumerate(images):
        tiles += [image[..., 0], *views[j]]
        titles += ["input", *(f"view {i + 1}" for i in range(n_views))]
    return write_contact_sheet(path, tiles, titles=titles, ncols=n_views + 1, tile_size=112)
