"""Pictures for people: label overlays and contact sheets (PNG), shared by the synthetic world, curation,
pretraining and segmentation.

Colours: label k > 0 takes `palette[k % len(palette)]`; the default palette is matplotlib's tab10 cycle
(label 1 = C0, 2 = C1, …); label 0 (background) is never coloured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw

from cemjax.common.files import atomic_path

TITLE_HEIGHT = 14
TAB10 = tuple(tuple(round(255 * c) for c in to_rgb(f"C{i}")) for i in range(10))
DEFAULT_PALETTE = ((0, 0, 0), *TAB10)  # index 0 (background) is unused


def label_colours(num_classes: int, palette: Sequence[tuple[int, int, int]] = DEFAULT_PALETTE) -> np.ndarray:
    """RGB uint8 [num_classes, 3]; row 0 (background) is unused, rows 1.. cycle through palette[1:]."""
    rest = palette[1:]
    return np.array([(0, 0, 0)] + [rest[(k - 1) % len(rest)] for k in range(1, num_classes)], np.uint8)


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
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.4, palette: Sequence[tuple[int, int, int]] | None = None
) -> np.ndarray:
    """RGB uint8 [H, W, 3]: `image` in gray with label > 0 pixels tinted by their colour (weight `alpha`)."""
    labels = np.asarray(labels).astype(np.int64)
    colours = label_colours(int(labels.max(initial=0)) + 1, palette or DEFAULT_PALETTE).astype(np.float32)
    rgb = np.repeat(to_display_uint8(image).astype(np.float32)[..., None], 3, axis=-1)
    tinted = (1 - alpha) * rgb + alpha * colours[labels]
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
    palette: Sequence[tuple[int, int, int]] | None = None,
) -> str:
    """Write a PNG grid of 2D `images` (any dtype, each min–max scaled unless uint8) and return its path.

    labels: per image an (H, W) integer map (coloured as `overlay_labels` with `palette`) or None.
    tile_size: every tile resized (nearest) to tile_size² pixels; default the largest image's size.
    Sheet size: ncols·(tile_w + padding) + padding wide, nrows·(tile_h + title + padding) + padding high,
    where title is `TITLE_HEIGHT` pixels when `titles` are given, else 0.
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
        rgb = overlay_labels(image, label, alpha, palette) if label is not None else to_display_uint8(image)
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
