"""Cut uint8 planes into 224×224 patches on the reference grid (docs/method.md §1.3) and name them.

Grid per side: n = max(1, round(L / 224)) tiles starting at 0, 224, …; the last tile ends at
min(start + 224, L), so it may be shorter. Rounding is half-up (the reference's Python `round` is
half-to-even, which at L = 2.5×224 drops a 112-px strip); tiles shorter than 112 px on a side are dropped.
Short edge tiles are resized to 224×224 with PIL's bilinear filter — the reference hashed them after exactly
this resize, and the released CEM500K patches are all 224×224 — while their names keep the true bounds.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PATCH = 224
MIN_EDGE = PATCH // 2


def grid(length: int, size: int = PATCH, min_edge: int = MIN_EDGE) -> list[tuple[int, int]]:
    """[(start, stop)] of the tiles along one side of `length` px."""
    n = max(1, int(np.floor(length / size + 0.5)))
    spans = [(i * size, min(i * size + size, length)) for i in range(n)]
    return [(a, b) for a, b in spans if b - a >= min_edge]


def resize_bilinear(tile: np.ndarray, size: int = PATCH) -> np.ndarray:
    """uint8 [h, w] → uint8 [size, size] with PIL's BILINEAR (identity when already size×size)."""
    if tile.shape == (size, size):
        return tile
    return np.asarray(Image.fromarray(np.ascontiguousarray(tile)).resize((size, size), Image.Resampling.BILINEAR))


def cut_patches(planes: np.ndarray, size: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """Patches of a block of uint8 planes.

    planes: uint8 [n, H, W]. Returns (patches uint8 [m, size, size], boxes int32 [m, 5] = (plane index in
    block, y0, y1, x0, x1)), ordered by plane, then row, then column.
    """
    n, h, w = planes.shape
    rows, cols = grid(h, size), grid(w, size)
    if n == 0 or not rows or not cols:
        return np.zeros((0, size, size), np.uint8), np.zeros((0, 5), np.int32)
    out = np.empty((n, len(rows), len(cols), size, size), np.uint8)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            tiles = planes[:, y0:y1, x0:x1]
            if (y1 - y0, x1 - x0) == (size, size):
                out[:, i, j] = tiles
            else:
                out[:, i, j] = [resize_bilinear(t, size) for t in tiles]
    k = np.arange(n)[:, None, None]
    r = np.array(rows)[None, :, None, :].repeat(len(cols), 2)
    c = np.array(cols)[None, None, :, :].repeat(len(rows), 1)
    boxes = np.concatenate(
        [
            np.broadcast_to(k, (n, len(rows), len(cols)))[..., None],
            np.broadcast_to(r, (n, len(rows), len(cols), 2)),
            np.broadcast_to(c, (n, len(rows), len(cols), 2)),
        ],
        axis=-1,
    ).reshape(-1, 5)
    return out.reshape(-1, size, size), boxes.astype(np.int32)


def patch_name(source: str, axis: str, index: int, y0: int, y1: int, x0: int, x1: int) -> str:
    """`{source}-LOC-{axis}_{slice}_{y0}-{y1}_{x0}-{x1}` (docs/method.md §1.3)."""
    return f"{source}-LOC-{axis}_{index}_{y0}-{y1}_{x0}-{x1}"
