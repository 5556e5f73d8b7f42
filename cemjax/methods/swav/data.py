"""SwAV's input: multi-crop views of every patch (docs/method.md §2.4). Each crop follows MoCoV2's recipe
(`cemjax.data.augment.ViewRecipe`) but for its RandomResizedCrop scale range: in the CEM1.5M recipe two 224 px
crops of scale 0.14–1 and six 96 px crops of scale 0.05–0.14."""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import numpy as np

from cemjax.common.norms import CEM500K_NORMS
from cemjax.common.pictures import write_contact_sheet
from cemjax.data.augment import ViewRecipe, make_views
from cemjax.data.canvas import on_canvas


@dataclass(frozen=True)
class MultiCrop:
    """`counts[i]` crops of `sizes[i]` px with RandomResizedCrop scale in [`min_scales[i]`, `max_scales[i]`]."""

    sizes: tuple[int, ...] = (224, 96)
    counts: tuple[int, ...] = (2, 6)
    min_scales: tuple[float, ...] = (0.14, 0.05)
    max_scales: tuple[float, ...] = (1.0, 0.14)

    @classmethod
    def from_config(cls, swav_config) -> MultiCrop:
        c = swav_config
        return cls(tuple(c.crop_sizes), tuple(c.crop_counts), tuple(c.crop_min_scales), tuple(c.crop_max_scales))

    @property
    def view_sizes(self) -> tuple[int, ...]:
        return tuple(s for s, n in zip(self.sizes, self.counts, strict=True) for _ in range(n))

    @property
    def recipes(self) -> tuple[ViewRecipe, ...]:
        groups = zip(self.counts, self.min_scales, self.max_scales, strict=True)
        return tuple(ViewRecipe(crop_scale=(lo, hi)) for n, lo, hi in groups for _ in range(n))


def multicrop_views(images: jax.Array, key: jax.Array, valid: jax.Array | None = None, *, crops: MultiCrop,
                    mean: float, std: float) -> tuple[jax.Array, ...]:  # fmt: skip
    """uint8 [B, H, W, 1] canvases (`valid` [B, 2] true sizes) → one float32 [B, s, s, 1] view per crop, larger
    crops first, normalised."""
    return make_views(images, key, valid, sizes=crops.view_sizes, recipes=crops.recipes, mean=mean, std=std)


multicrop_views_jit = jax.jit(multicrop_views, static_argnames=("crops", "mean", "std"))


def multicrop_tiles(images: np.ndarray, crops: MultiCrop, seed: int, norms: tuple[float, float],
                    valid: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Every crop of every image as uint8 (de-normalised), the smaller ones centred on black at the largest
    crop's size so their scale shows: [N, V, S, S], S = max(crops.sizes)."""
    views = multicrop_views_jit(images, jax.random.key(seed), valid, crops=crops, mean=norms[0], std=norms[1])
    size = max(crops.sizes)
    out = np.zeros((images.shape[0], len(views), size, size), np.uint8)
    for v, view in enumerate(views):
        pixels = np.round(np.clip(np.asarray(view)[..., 0] * norms[1] + norms[0], 0, 1) * 255).astype(np.uint8)
        s = pixels.shape[1]
        o = (size - s) // 2
        out[:, v, o : o + s, o : o + s] = pixels
    return out


def write_multicrop_sheet(path: str | os.PathLike, images: list[np.ndarray], crops: MultiCrop = MultiCrop(),
                          seed: int = 0, norms: tuple[float, float] = CEM500K_NORMS) -> str:  # fmt: skip
    """PNG, one row per uint8 [h, w, 1] image (any sizes): the input, then its crops (small ones at scale)."""
    canvas, valid = on_canvas(images)
    tiles = multicrop_tiles(canvas, crops, seed, norms, valid)
    cells, titles = [], []
    for j, image in enumerate(images):
        cells += [image[..., 0], *tiles[j]]
        titles += ["input", *(f"{s} px" for s in crops.view_sizes)]
    return write_contact_sheet(path, cells, titles=titles, ncols=tiles.shape[1] + 1, tile_size=112)
