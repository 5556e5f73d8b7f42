"""Contact sheets: a grid of grayscale images (optionally with a coloured label overlay and titles) as PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from cemjax.synthetic.classes import CLASS_COLORS
from cemjax.synthetic.writers import atomic_path

TITLE_HEIGHT = 14


def to_display_uint8(image: np.ndarray) -> np.ndarray:
    """Any 2D array → uint8 for viewing: uint8 as is, others min–max scaled (constant → mid-gray)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.full(image.shape, 128, np.uint8)
    return np.round((image - lo) / (hi - lo) * 255).astype(np.uint8)


def overlay_labels(
    image: np.ndarray,
    labels: np.ndarray,
    alpha: float = 0.4,
    colors: Sequence[tuple[int, int, int]] = CLASS_COLORS,
) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``image`` in gray with label > 0 pixels tinted by ``colors[label]``."""
    gray = to_display_uint8(image).astype(np.float32)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    palette = np.asarray(colors, np.float32)
    labels = np.asarray(labels).astype(np.int64) % len(palette)
    tinted = (1 - alpha) * rgb + alpha * palette[labels]
    return np.where((labels > 0)[..., None], tinted, rgb).round().astype(np.uint8)


def write_contact_sheet(
    path: str | os.PathLike,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray | None] | None = None,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    tile_size: int | None = None,
    alpha: float = 0.4,
    padding: int = 4,
) -> str:
    """Write a PNG grid of 2D ``images`` (any dtype, each min–max scaled unless uint8) and return its path.

    labels: per image an (H, W) integer map (class colours of :data:`CLASS_COLORS`) or None.
    tile_size: every tile resized (nearest) to tile_size² pixels; default the largest image's size.
    Sheet size: ncols·(tile_w + padding) + padding wide, nrows·(tile_h + title + padding) + padding high,
    where title is :data:`TITLE_HEIGHT` pixels when ``titles`` are given, else 0.
    """
    if not images:
        raise ValueError("no images")
    ncols = ncols or int(np.ceil(np.sqrt(len(images))))
    nrows = int(np.ceil(len(images) / ncols))
    tile_h = tile_size or max(int(np.asarray(im).shape[0]) for im in images)
    tile_w = tile_size or max(int(np.asarray(im).shape[1]) for im in images)
    title_h = TITLE_HEIGHT if titles else 0
    sheet = Image.new(
        "RGB",
        (ncols * (tile_w + padding) + padding, nrows * (tile_h + title_h + padding) + padding),
        (32, 32, 32),
    )
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        label = labels[i] if labels is not None else None
        rgb = overlay_labels(image, label, alpha) if label is not None else to_display_uint8(image)
        tile = Image.fromarray(rgb)
        if tile.size != (tile_w, tile_h) and tile_size:
            tile = tile.resize((tile_w, tile_h), Image.Resampling.NEAREST)
        x = padding + (i % ncols) * (tile_w + padding)
        y = padding + (i // ncols) * (tile_h + title_h + padding)
        if titles:
            draw.text((x, y), str(titles[i])[: max(tile_w // 6, 1)], fill=(230, 230, 230))
        sheet.paste(tile.convert("RGB"), (x, y + title_h))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return os.fspath(path)
