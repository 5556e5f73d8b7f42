"""Cut uint8 planes into patches on the reference's grid (docs/method.md §1.3) and name them.

Grid per side of L px: n = max(1, round(L / 224)) tiles with Python's `round` (half to even: 560 px → 2 tiles,
the 112-px remainder is not cut) starting at 0, 224, …; the last tile ends at min(start + 224, L), so a side
shorter than 224 (or the remainder) gives a shorter tile. Patches are kept at their true size; only the copy a
patch is hashed from is resized to 224 × 224 with PIL's bilinear filter, as the reference hashes it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PATCH = 224


def tile_count(length: int, size: int = PATCH) -> int:
    """Tiles along one side: max(1, round(length / size)), Python's round (half to even) as the reference."""
    return max(1, int(round(length / size)))


def grid(length: int, size: int = PATCH) -> list[tuple[int, int]]:
    """[(start, stop)] of the tiles along one side of `length` px."""
    return [(i * size, min(i * size + size, length)) for i in range(tile_count(length, size))]


def resize_bilinear(tile: np.ndarray, size: int = PATCH) -> np.ndarray:
    """uint8 [h, w] → uint8 [size, size] with PIL's BILINEAR (identity when already size×size)."""
    if tile.shape == (size, size):
        return tile
    return np.asarray(Image.fromarray(np.ascontiguousarray(tile)).resize((size, size), Image.Resampling.BILINEAR))


def cut_patches(planes: np.ndarray, size: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """Patches of a block of uint8 planes, at their true size on size × size canvases.

    planes: uint8 [n, H, W]. Returns (canvases uint8 [m, size, size] — patch i in its top-left
    (y1 − y0) × (x1 − x0), zeros beyond — and boxes int32 [m, 5] = (plane index in block, y0, y1, x0, x1)),
    ordered by plane, then row, then column.
    """
    n, h, w = planes.shape
    rows, cols = grid(h, size), grid(w, size)
    if n == 0:
        return np.zeros((0, size, size), np.uint8), np.zeros((0, 5), np.int32)
    out = np.zeros((n, len(rows), len(cols), size, size), np.uint8)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            out[:, i, j, : y1 - y0, : x1 - x0] = planes[:, y0:y1, x0:x1]
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


def true_patch(canvas: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The stored patch uint8 [y1 − y0, x1 − x0] of a canvas [size, size] and its box (…, y0, y1, x0, x1)."""
    y0, y1, x0, x1 = (int(v) for v in box[-4:])
    return canvas[: y1 - y0, : x1 - x0]


def hash_copies(canvases: np.ndarray, boxes: np.ndarray, size: int = PATCH) -> np.ndarray:
    """What the hash sees: every patch resized to size × size (full patches as they are). uint8 [m, size, size]."""
    out = np.array(canvases, copy=True)
    short = np.flatnonzero((boxes[:, -3] - boxes[:, -4] != size) | (boxes[:, -1] - boxes[:, -2] != size))
    for i in short:
        out[i] = resize_bilinear(true_patch(canvases[i], boxes[i]), size)
    return out


def patch_name(source: str, axis: str, index: int, y0: int, y1: int, x0: int, x1: int) -> str:
    """`{source}-LOC-{axis}_{slice}_{y0}-{y1}_{x0}-{x1}` (docs/method.md §1.3)."""
    return f"{source}-LOC-{axis}_{index}_{y0}-{y1}_{x0}-{x1}"
