"""Cells as a warped Voronoi tessellation, optionally rounded (cultured cells floating in resin).

A cell is the set of points nearer to its seed than to any other seed, shrunk by half the extracellular gap
and (for rounded styles) clipped to a sphere of radius ``cell_radius``. Some seeds are "empty" and leave
resin. All distances are in nm, in the warped coordinates of :mod:`cemjax.synthetic.fields`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from cemjax.synthetic.fields import Spacing, grid_extent, warped_box


@dataclass(frozen=True)
class CellLayout:
    """Seeds of a power (Laguerre) tessellation: cell i owns points minimising |x − s_i|² − r_i².

    seeds: (n, 3) float64 nm (z, y, x); size: (n,) nm nominal cell radius (the power weight is size²);
    alive: (n,) bool (False: resin); radius: (n,) nm sphere clip (inf for packed tissue);
    gap_nm: extracellular gap between neighbouring cells.
    """

    seeds: np.ndarray
    size: np.ndarray
    alive: np.ndarray
    radius: np.ndarray
    gap_nm: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", cKDTree(self.seeds))

    def signed_distance_at(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance (nm, + inside a cell) and owning seed index at points (m, 3).

        Only the 32 Euclidean-nearest seeds are candidates (exact unless a cell is > 32 neighbours wide).
        """
        points = np.atleast_2d(points)
        _, near = self._tree.query(points, k=min(32, len(self.seeds)))
        near = near.reshape(len(points), -1)
        cand = self.seeds[near]  # (m, k, 3)
        d2 = ((points[:, None, :] - cand) ** 2).sum(-1)
        power = d2 - self.size[near] ** 2
        best = np.argmin(power, axis=1)
        rows = np.arange(points.shape[0])
        owner = near[rows, best]
        separation = np.linalg.norm(cand - self.seeds[owner][:, None], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_bisector = (power - power[rows, best][:, None]) / (2 * separation)
        to_bisector[rows, best] = np.inf
        edge = to_bisector.min(axis=1) - self.gap_nm / 2
        sphere = self.radius[owner] - np.sqrt(d2[rows, best])
        sd = np.minimum(edge, sphere)
        return np.where(self.alive[owner], sd, -np.inf), owner


def poisson_disk_seeds(lo: np.ndarray, hi: np.ndarray, min_dist: float, rng: np.random.Generator) -> np.ndarray:
    """Dart-throwing blue-noise points in the box [lo, hi] (nm) at least ``min_dist`` apart; (n, 3)."""
    volume = float(np.prod(hi - lo))
    target = max(int(volume / (0.9 * min_dist**3)), 2)
    accepted = np.zeros((0, 3))
    for point in rng.uniform(lo, hi, size=(target * 12, 3)):
        if len(accepted) and np.min(np.sum((accepted - point) ** 2, axis=1)) < min_dist**2:
            continue
        accepted = np.vstack([accepted, point])
        if len(accepted) >= target:
            break
    return accepted


def filler_seeds(
    lo: np.ndarray, hi: np.ndarray, big: np.ndarray, big_size: np.ndarray, diameter: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Small cells (axon-like profiles) on a jittered lattice in the space the big cells leave free."""
    step = 0.9 * diameter
    axes = [np.arange(a + step / 2, b, step) for a, b in zip(lo, hi, strict=True)]
    lattice = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    points = lattice + rng.uniform(-0.3 * step, 0.3 * step, lattice.shape)
    size = diameter / 2 * np.exp(rng.normal(0.0, 0.25, len(points)))
    if len(big):
        clearance = np.linalg.norm(points[:, None] - big[None], axis=-1) - 0.95 * big_size[None]
        keep = clearance.min(axis=1) > 0.8 * size
        points, size = points[keep], size[keep]
    return points, size


def make_layout(
    shape: tuple[int, int, int],
    spacing_nm: Spacing,
    rng: np.random.Generator,
    cell_diameter_nm: float,
    gap_nm: float,
    empty_fraction: float,
    rounded: bool,
    small_diameter_nm: float = 0.0,
) -> CellLayout:
    """Seeds covering the grid plus a margin; ``small_diameter_nm`` > 0 fills gaps with small profiles."""
    lo, hi = grid_extent(shape, spacing_nm)
    margin = 0.75 * cell_diameter_nm
    min_dist = (0.75 if not small_diameter_nm else 1.1) * cell_diameter_nm
    seeds = poisson_disk_seeds(lo - margin, hi + margin, min_dist, rng)
    size = cell_diameter_nm / 2 * rng.uniform(0.85, 1.15, len(seeds))
    if small_diameter_nm:
        small, small_size = filler_seeds(lo - margin, hi + margin, seeds, size, small_diameter_nm, rng)
        seeds, size = np.vstack([seeds, small]), np.concatenate([size, small_size])
    alive = rng.random(len(seeds)) >= empty_fraction
    if rounded:
        radius = size * rng.uniform(0.8, 1.05, len(seeds))
    else:
        radius = np.full(len(seeds), np.inf)
    return CellLayout(seeds=seeds, size=size, alive=alive, radius=radius, gap_nm=gap_nm)


@dataclass
class CellFields:
    """Per-voxel tessellation fields, each of the grid's shape.

    sd: float32 signed distance to the own cell's surface (nm, + inside, very negative in resin);
    owner / neighbour: int32 nearest and second-nearest seed; edge: float32 distance to their bisector (nm);
    tilt: float32 |z component| of the normal of that bisector (0: membrane seen edge-on in a section).
    """

    sd: np.ndarray
    owner: np.ndarray
    neighbour: np.ndarray
    edge: np.ndarray
    tilt: np.ndarray


def cell_fields(coords: list[np.ndarray], layout: CellLayout, spacing_nm: Spacing) -> CellFields:
    """Nearest/second-nearest (power distance) seed search, each seed limited to a box of ~1.6 cell radii."""
    shape = coords[0].shape
    nearest = np.full(shape, np.inf, np.float32)
    second = np.full(shape, np.inf, np.float32)
    owner = np.zeros(shape, np.int32)
    neighbour = np.zeros(shape, np.int32)
    seeds, weight = layout.seeds, (layout.size**2).astype(np.float32)
    lo, hi = grid_extent(shape, spacing_nm)
    reach = 1.5 * layout.size * 1.2 + 60.0 + 4 * 80.0  # warped_box's margin plus the largest warp
    near_grid = np.all((seeds > lo - reach[:, None]) & (seeds < hi + reach[:, None]), axis=1)
    for k in np.flatnonzero(near_grid):
        seed = seeds[k]
        box = warped_box(coords, seed, 1.5 * layout.size[k], spacing_nm)
        if box is None:
            continue
        power = sum((c[box] - np.float32(seed[i])) ** 2 for i, c in enumerate(coords)) - weight[k]
        p1, p2, o1, o2 = nearest[box], second[box], owner[box], neighbour[box]
        closer = power < p1
        runner_up = ~closer & (power < p2)
        second[box] = np.where(closer, p1, np.where(runner_up, power, p2))
        neighbour[box] = np.where(closer, o1, np.where(runner_up, k, o2))
        nearest[box] = np.where(closer, power, p1)
        owner[box] = np.where(closer, k, o1)
    separation2 = np.zeros(shape, np.float32)
    for axis in (2, 1, 0):
        table = seeds[:, axis].astype(np.float32)
        along = table[owner] - table[neighbour]
        separation2 += along**2
    separation = np.sqrt(separation2)
    with np.errstate(invalid="ignore", divide="ignore"):
        tilt = np.nan_to_num(np.abs(along) / separation).astype(np.float32)  # `along` is the z difference
    with np.errstate(invalid="ignore", divide="ignore"):
        edge = (second - nearest) / (2 * separation)
    edge = np.where(np.isfinite(edge), edge, np.float32(1e4))
    own_distance = np.sqrt(np.maximum(nearest + weight[owner], 0.0))
    sd = np.minimum(edge - np.float32(layout.gap_nm / 2), layout.radius[owner].astype(np.float32) - own_distance)
    sd = np.where(layout.alive[owner] & np.isfinite(nearest), sd, np.float32(-1e4)).astype(np.float32)
    return CellFields(sd=sd, owner=owner, neighbour=neighbour, edge=edge.astype(np.float32), tilt=tilt)
