"""The block plan of blockwise segmentation: which voxels each block owns and which it reads (a halo around
them), chosen so that the stitched result equals whole-volume inference wherever a block spans its axes.

Volumes are [Z, Y, X] (a 2D image is [1, H, W]). An axis the model sees in its planes is *tiled*: y and x for
"2d" and "stack", all three for "orthoplane" (which also predicts xz and yz planes). Along a tiled axis of
length N, padded to N' = ⌈N/32⌉·32 (bottom/right reflection, as `cemjax.seg.inference` pads whole slices), a
block owns [b0, b1) and reads the tile [t0, t0 + T) with

    T = min(B + 2·halo, N'),   t0 = clamp(b0 − halo, 0, N' − T)

B, halo and so t0 are multiples of 32, so every tile sits on the UNet's stride-32 grid of the whole slice, the
owned part lies ≥ halo from the tile's inner borders, and all tiles of an axis share one shape (one compile).
An axis with N' ≤ the maximum tile is one block (B = N, t0 = 0, T = N'): then a block's prediction IS the
whole-slice prediction. Along an untiled axis (z in stack mode) blocks are plain slabs of B planes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

FACTOR = 32
MODES = ("2d", "stack", "orthoplane")


def ceil_to(n: int, factor: int = FACTOR) -> int:
    return -(-n // factor) * factor


@dataclass(frozen=True)
class AxisPlan:
    """One axis: `size` voxels in blocks of `block` (≥ size: one block); tiled axes read `tile` voxels per block
    (a halo of `halo` on each side where the volume allows)."""

    size: int
    block: int
    halo: int = 0
    tiled: bool = False

    @property
    def tile(self) -> int:
        if not self.tiled:
            return min(self.block, self.size)
        return min(self.block + 2 * self.halo, ceil_to(self.size))

    def starts(self) -> range:
        return range(0, self.size, self.block)

    def window(self, b0: int) -> tuple[int, int, int, slice]:
        """(read start, read stop, reflection pad after the read, the owned part inside the padded tile)."""
        b1 = min(b0 + self.block, self.size)
        if not self.tiled:
            return b0, b1, 0, slice(0, b1 - b0)
        t0 = min(max(b0 - self.halo, 0), ceil_to(self.size) - self.tile)
        stop = min(t0 + self.tile, self.size)
        return t0, stop, t0 + self.tile - stop, slice(b0 - t0, b1 - t0)


@dataclass(frozen=True)
class Block:
    """Block `index` (row-major over the block grid) owns `owned` (slices of the volume)."""

    index: int
    owned: tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """The plan of a [Z, Y, X] volume: one AxisPlan per axis and the axes predicted ((0,) or (0, 1, 2))."""

    axes: tuple[AxisPlan, AxisPlan, AxisPlan]
    predicted: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(a.size for a in self.axes)

    @property
    def block_shape(self) -> tuple[int, int, int]:
        return tuple(min(a.block, a.size) for a in self.axes)

    @property
    def tile_shape(self) -> tuple[int, int, int]:
        return tuple(a.tile for a in self.axes)

    def blocks(self) -> list[Block]:
        out = []
        for k, starts in enumerate(itertools.product(*(a.starts() for a in self.axes))):
            owned = tuple(slice(s, min(s + a.block, a.size)) for s, a in zip(starts, self.axes, strict=True))
            out.append(Block(k, owned))
        return out

    def __len__(self) -> int:
        n = 1
        for a in self.axes:
            n *= len(a.starts())
        return n

    def windows(self, block: Block):
        """Per axis (read start, read stop, pad after, owned slice inside the tile) of `block`."""
        return tuple(a.window(s.start) for a, s in zip(self.axes, block.owned, strict=True))

    def describe(self) -> str:
        z, y, x = self.block_shape
        tz, ty, tx = self.tile_shape
        return f"{len(self)} blocks of {z}×{y}×{x} (tiles {tz}×{ty}×{tx}, halo {max(a.halo for a in self.axes)})"


def plan(
    shape: tuple[int, int, int],
    mode: str,
    *,
    max_tile: int | None = None,
    halo: int = 32,
    slab: int = 16,
    chunk: int | None = None,
    block: tuple[int | None, int | None, int | None] = (None, None, None),
) -> Grid:
    """The block grid of a [Z, Y, X] volume for `mode`.

    max_tile: the largest tile edge in px along a tiled axis (default 1024 for 2d/stack, 256 for orthoplane);
    halo: px of context on each side (rounded up to a multiple of 32); slab: planes per block along an untiled
    axis; chunk: the output chunk edge along tiled axes (256 stack, 64 orthoplane) — blocks are multiples of it
    so no two blocks write the same chunk; block: explicit block edges (multiples of 32 along tiled axes).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ortho = mode == "orthoplane"
    max_tile = max_tile or (256 if ortho else 1024)
    chunk = chunk or (64 if ortho else 256)
    halo = ceil_to(max(0, halo))
    tiled = (True, True, True) if ortho else (False, True, True)
    axes = []
    for n, is_tiled, explicit in zip(shape, tiled, block, strict=True):
        if not is_tiled:
            axes.append(AxisPlan(n, explicit or slab))
            continue
        if explicit:
            if explicit < n and explicit % FACTOR:
                raise ValueError(f"block edge {explicit} must be a multiple of {FACTOR} (or cover the axis, {n})")
            axes.append(AxisPlan(n, explicit, halo, True))
        elif ceil_to(n) <= max_tile:
            axes.append(AxisPlan(n, n, halo, True))
        else:
            room = max_tile - 2 * halo
            edge = room // chunk * chunk or room // FACTOR * FACTOR  # whole chunks, else whole 32 px steps
            if edge < FACTOR:
                raise ValueError(f"max tile {max_tile} leaves no room for a block inside a {halo} px halo")
            axes.append(AxisPlan(n, edge, halo, True))
    return Grid(tuple(axes), (0, 1, 2) if ortho else (0,))


def output_chunks(grid: Grid, mode: str) -> tuple[int, int, int]:
    """Chunk edges of the label store: each block covers whole chunks (blocks never share one)."""
    preferred = 64 if mode == "orthoplane" else 256
    out = []
    for a in grid.axes:
        if not a.tiled:
            out.append(min(a.block, a.size))
        elif a.block >= a.size:
            out.append(min(preferred, a.size))
        else:
            out.append(preferred if a.block % preferred == 0 else a.block)
    return tuple(out)
