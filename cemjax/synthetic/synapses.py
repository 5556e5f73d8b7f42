"""Synapse-like contacts: a dense cleft between two apposed membranes, a postsynaptic density on one side
and a cluster of small vesicles on the other."""

from __future__ import annotations

import numpy as np

from cemjax.synthetic import classes as C
from cemjax.synthetic.cells import CellFields, CellLayout
from cemjax.synthetic.fields import band, coverage
from cemjax.synthetic.organelles import Canvas, paint_vesicle
from cemjax.synthetic.placement import Obstacles


def _plane_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(normal, u)


def add_synapses(
    canvas: Canvas,
    fields: CellFields,
    layout: CellLayout,
    count: int,
    obstacles: Obstacles,
    rng: np.random.Generator,
) -> int:
    """Paint up to ``count`` synapses on contacts between living cells; returns how many were painted."""
    gap = layout.gap_nm
    contact = (
        (fields.edge < gap / 2 + canvas.pixel_nm)
        & layout.alive[fields.owner]
        & layout.alive[fields.neighbour]
        & (fields.owner != fields.neighbour)
    )
    candidates = np.flatnonzero(contact)
    if count <= 0 or candidates.size == 0:
        return 0
    thin_section = canvas.density.shape[0] == 1
    centers: list[np.ndarray] = []
    for flat in rng.choice(candidates, size=min(candidates.size, 40 * count), replace=False):
        if len(centers) >= count:
            break
        idx = np.unravel_index(flat, canvas.density.shape)
        center = np.array([float(c[idx]) for c in canvas.coords])
        pre, post = int(fields.owner[idx]), int(fields.neighbour[idx])
        if layout.size[pre] < layout.size[post] and rng.random() < 0.7:  # room for a vesicle cluster
            pre, post = post, pre
        normal = layout.seeds[post] - layout.seeds[pre]
        normal /= np.linalg.norm(normal)
        if thin_section and abs(normal[0]) > 0.5:
            continue  # seen en face in a thin section a cleft is a smear; keep the classic side views
        if centers and np.min(np.linalg.norm(np.asarray(centers) - center, axis=1)) < 700.0:
            continue
        centers.append(center)
        _paint_contact(canvas, fields, center, normal, pre, post, gap, rng)
        _vesicle_cluster(canvas, layout, center, normal, pre, gap, obstacles, rng)
    return len(centers)


def _paint_contact(canvas, fields, center, normal, pre, post, gap, rng) -> None:
    radius = rng.uniform(120.0, 260.0)
    found = canvas.box(center, radius + 60.0)
    if found is None:
        return
    box, local = found
    owner, neighbour, edge = fields.owner[box], fields.neighbour[box], fields.edge[box]
    pair = ((owner == pre) & (neighbour == post)) | ((owner == post) & (neighbour == pre))
    rel = [c - np.float32(center[i]) for i, c in enumerate(local)]
    along_normal = sum(r * np.float32(normal[i]) for i, r in enumerate(rel))
    lateral = np.sqrt(np.maximum(sum(r * r for r in rel) - along_normal**2, 0.0))
    disk = coverage(radius - lateral, canvas.pixel_nm * 2) * pair
    half, _ = canvas.membrane_width()
    cleft = disk * coverage(gap / 2 + 2 * half - edge, canvas.pixel_nm)
    canvas.density[box] += np.float32(0.32) * cleft
    canvas.labels[box][cleft > 0.5] = C.CLEFT
    density_side = disk * (owner == post) * band(edge, gap / 2 + 22.0, 14.0)
    canvas.density[box] += np.float32(0.3) * density_side


def _vesicle_cluster(canvas, layout, center, normal, pre, gap, obstacles, rng) -> None:
    u, v = _plane_basis(normal)
    thin_section = canvas.density.shape[0] == 1
    count = int(rng.integers(40, 110))
    radii = rng.uniform(17.0, 24.0, count)
    depth = gap / 2 + radii + rng.uniform(15.0, min(320.0, 1.2 * layout.size[pre]), count)
    spread = 320.0 * np.sqrt(rng.random(count))
    angle = rng.uniform(0, 2 * np.pi, count)
    lateral = spread[:, None] * (np.cos(angle)[:, None] * u + np.sin(angle)[:, None] * v)
    points = center - normal * depth[:, None] + lateral
    if thin_section:  # keep the cluster in the section, where it can be seen
        points[:, 0] = center[0] + rng.uniform(-0.7, 0.7, count) * radii
    room, owner = layout.signed_distance_at(points)
    dense_core = rng.random(count) < 0.03
    for point, radius, ok, dense in zip(points, radii, (owner == pre) & (room >= radii + 8.0), dense_core, strict=True):
        if ok and not obstacles.hits(point, radius + 3.0):
            obstacles.add(point, radius)
            paint_vesicle(canvas, point, radius, dense_core=bool(dense))
