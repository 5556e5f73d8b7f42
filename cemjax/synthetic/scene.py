"""Procedural cellular scenes: stain density + semantic labels on a (z, y, x) grid in physical units.

Objects are defined in nm, so one scene sampled at (sz, sy, sx) = (40, 8, 8) nm is genuinely anisotropic:
an organelle spans 5× fewer sections than pixels. A 2D image is a scene with one section (shape (1, H, W));
its z spacing is the section thickness.

Styles (:data:`STYLES`): ``neuropil`` (small packed profiles, synapses with vesicle clusters, few nuclei —
FIB-SEM/ssTEM of brain), ``tissue`` (packed 3–5 µm cells with nuclei and lysosomes — liver/kidney-like),
``culture`` (rounded 5–9 µm cells in resin, large nuclei with nucleoli — TEM of cultured cells).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cemjax.synthetic import classes as C
from cemjax.synthetic.cells import cell_fields, make_layout
from cemjax.synthetic.fields import Spacing, coverage, fine_grain, grid_extent, random_rotation, smooth_noise
from cemjax.synthetic.fields import warped_coordinates as _warped_coordinates
from cemjax.synthetic.organelles import (
    MEMBRANE_HALF_WIDTH_NM,
    Canvas,
    paint_lysosome,
    paint_mitochondrion,
    paint_nucleolus,
    paint_nucleus,
    paint_vesicle,
)
from cemjax.synthetic.placement import Obstacles, capsule_spheres, fits, sample_capsule
from cemjax.synthetic.synapses import add_synapses


@dataclass(frozen=True)
class SceneStyle:
    """Biology knobs; lengths in nm. Organelle densities are placement attempts per µm³ of grid volume
    (attempts that do not fit inside a cell are dropped, so real counts are lower)."""

    cell_diameter_nm: tuple[float, float]  # large cells; one value is drawn per scene
    small_diameter_nm: float  # > 0: fill the space between large cells with small (axon-like) profiles
    gap_nm: float  # extracellular gap between apposed membranes
    empty_fraction: float  # fraction of cells left as resin/extracellular space
    rounded: bool  # clip cells to spheres (cultured cells in resin)
    nucleus_probability: float
    mito_per_um3: float
    mito_radius_nm: tuple[float, float]
    mito_half_length_nm: float
    lysosome_per_um3: float
    vesicle_per_um3: float
    synapses_per_um3: float


STYLES: dict[str, SceneStyle] = {
    "neuropil": SceneStyle(
        cell_diameter_nm=(1600.0, 2400.0),
        small_diameter_nm=450.0,
        gap_nm=18.0,
        empty_fraction=0.02,
        rounded=False,
        nucleus_probability=0.1,
        mito_per_um3=10.0,
        mito_radius_nm=(60.0, 130.0),
        mito_half_length_nm=700.0,
        lysosome_per_um3=0.08,
        vesicle_per_um3=30.0,
        synapses_per_um3=1.0,
    ),
    "tissue": SceneStyle(
        cell_diameter_nm=(3000.0, 4500.0),
        small_diameter_nm=0.0,
        gap_nm=25.0,
        empty_fraction=0.06,
        rounded=False,
        nucleus_probability=0.85,
        mito_per_um3=1.8,
        mito_radius_nm=(140.0, 230.0),
        mito_half_length_nm=900.0,
        lysosome_per_um3=0.5,
        vesicle_per_um3=6.0,
        synapses_per_um3=0.02,
    ),
    "culture": SceneStyle(
        cell_diameter_nm=(5000.0, 9000.0),
        small_diameter_nm=0.0,
        gap_nm=30.0,
        empty_fraction=0.15,
        rounded=True,
        nucleus_probability=0.95,
        mito_per_um3=0.8,
        mito_radius_nm=(150.0, 250.0),
        mito_half_length_nm=1100.0,
        lysosome_per_um3=0.3,
        vesicle_per_um3=5.0,
        synapses_per_um3=0.0,
    ),
}


@dataclass
class Scene:
    """density: float32 (z, y, x) stain, ~0 (resin) to ~1.2; labels: uint8 class ids (:data:`CLASS_NAMES`);
    cell_ids: uint16 cell instance (0 outside cells); spacing_nm: (sz, sy, sx) voxel size in nm."""

    density: np.ndarray
    labels: np.ndarray
    cell_ids: np.ndarray
    spacing_nm: Spacing


def make_scene(
    shape: tuple[int, int, int] | tuple[int, int],
    spacing_nm: Spacing | tuple[float, float],
    style: str = "neuropil",
    seed: int | np.random.Generator = 0,
    section_thickness_nm: float = 50.0,
) -> Scene:
    """Render a scene. ``shape`` (z, y, x) or (y, x) for a single section of ``section_thickness_nm``."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if len(shape) == 2:
        shape = (1, *shape)
        spacing_nm = (section_thickness_nm, *spacing_nm)
    shape = tuple(int(s) for s in shape)
    spacing_nm = tuple(float(s) for s in spacing_nm)
    params = STYLES[style]
    coords = _warped_coordinates(shape, spacing_nm, rng)
    pixel = min(spacing_nm[1:])
    canvas = Canvas(
        density=np.zeros(shape, np.float32),
        labels=np.zeros(shape, np.uint8),
        coords=coords,
        grain=fine_grain(shape, spacing_nm, 9.0, rng),
        blotch=smooth_noise(shape, spacing_nm, 110.0, rng),
        spacing_nm=spacing_nm,
    )
    diameter = rng.uniform(*params.cell_diameter_nm)
    layout = make_layout(
        shape,
        spacing_nm,
        rng,
        diameter,
        params.gap_nm,
        params.empty_fraction,
        params.rounded,
        params.small_diameter_nm,
    )
    fields = cell_fields(coords, layout, spacing_nm)
    tone = rng.uniform(-0.06, 0.06, len(layout.seeds)) + 0.12 * (rng.random(len(layout.seeds)) < 0.08)
    _paint_cells(canvas, fields, tone, pixel)

    obstacles = Obstacles()
    for k in np.flatnonzero(layout.alive & (rng.random(len(layout.seeds)) < params.nucleus_probability)):
        _add_nucleus(canvas, layout, k, obstacles, rng)
    lo, hi = grid_extent(shape, spacing_nm)
    _populate(canvas, layout, params, obstacles, rng)
    synapse_volume = float(np.prod(np.maximum(hi - lo, 400.0))) / 1e9
    n_synapses = int(rng.poisson(params.synapses_per_um3 * synapse_volume))
    add_synapses(canvas, fields, layout, n_synapses, obstacles, rng)
    _scatter_vesicles(canvas, layout, params, obstacles, rng)

    cell_ids = np.where(fields.sd > 0, fields.owner + 1, 0).astype(np.uint16)
    np.clip(canvas.density, 0.0, 1.5, out=canvas.density)
    return Scene(density=canvas.density, labels=canvas.labels, cell_ids=cell_ids, spacing_nm=spacing_nm)


def _candidates(rng, lo, hi, per_um3: float, reach_nm: float) -> np.ndarray:
    """Uniform candidate centres (m, 3) in the grid grown by ``reach_nm``; m ~ Poisson(per_um3 · volume)."""
    size = (hi - lo) + 2 * reach_nm
    count = int(rng.poisson(per_um3 * float(np.prod(size)) / 1e9))
    return rng.uniform(lo - reach_nm, hi + reach_nm, size=(count, 3))


def _populate(canvas: Canvas, layout, params: SceneStyle, obstacles: Obstacles, rng) -> None:
    """Mitochondria then lysosomes; candidates whose centre is not deep enough in a cell are dropped
    in one vectorised test before the exact per-object check."""
    lo, hi = grid_extent(canvas.density.shape, canvas.spacing_nm)
    reach = params.mito_radius_nm[1] + params.mito_half_length_nm * 0.5
    centers = _candidates(rng, lo, hi, params.mito_per_um3, reach)
    capsules = [sample_capsule(rng, c, params.mito_radius_nm, params.mito_half_length_nm) for c in centers]
    depth, _ = layout.signed_distance_at(centers) if len(centers) else (np.zeros(0), None)
    for center, (end_a, end_b, radius), room in zip(centers, capsules, depth, strict=True):
        if room < radius + 20.0:
            continue
        for shrink in (1.0, 0.5, 0.0):  # a long one that does not fit may fit shorter
            a, b = center + shrink * (end_a - center), center + shrink * (end_b - center)
            spheres = capsule_spheres(a, b, radius)
            if fits(layout, obstacles, spheres, radius, 20.0):
                for c in spheres:
                    obstacles.add(c, radius)
                paint_mitochondrion(canvas, a, b, radius, rng)
                break
    centers = _candidates(rng, lo, hi, params.lysosome_per_um3, 350.0)
    radii = rng.uniform(110.0, 350.0, len(centers))
    depth, _ = layout.signed_distance_at(centers) if len(centers) else (np.zeros(0), None)
    for center, radius, room in zip(centers, radii, depth, strict=True):
        if room >= radius + 25.0 and fits(layout, obstacles, [center], radius, 25.0):
            obstacles.add(center, radius)
            paint_lysosome(canvas, center, radius, rng)


def _scatter_vesicles(canvas: Canvas, layout, params: SceneStyle, obstacles: Obstacles, rng) -> None:
    """Free vesicles: 75 % synaptic-vesicle sized (17–26 nm radius, 5 % dense-core), 25 % 40–100 nm."""
    lo, hi = grid_extent(canvas.density.shape, canvas.spacing_nm)
    centers = _candidates(rng, lo, hi, params.vesicle_per_um3, 100.0)
    large = rng.random(len(centers)) < 0.25
    radii = np.where(large, rng.uniform(40.0, 100.0, len(centers)), rng.uniform(17.0, 26.0, len(centers)))
    dense_core = ~large & (rng.random(len(centers)) < 0.05)
    depth, _ = layout.signed_distance_at(centers) if len(centers) else (np.zeros(0), None)
    for center, radius, room, dense in zip(centers, radii, depth, dense_core, strict=True):
        if room >= radius + 15.0 and not obstacles.hits(center, radius + 7.5):
            obstacles.add(center, radius)
            paint_vesicle(canvas, center, radius, dense_core=bool(dense))


def _paint_cells(canvas: Canvas, fields, tone: np.ndarray, pixel: float) -> None:
    """Resin, granular cytoplasm (with ribosome-like dark specks) and plasma membranes, in place."""
    sd, grain = fields.sd, canvas.grain
    inside = coverage(sd, pixel)
    # Narrow extracellular spaces in fixed tissue hold stained matrix: dark seams, not white gaps. Like the
    # membranes, the seam fades where it runs obliquely through the section.
    outside = np.maximum(-sd, 0.0)
    seam_width = np.sqrt(np.float32(25.0**2) + (np.float32(canvas.spacing_nm[0] / 2.5) * fields.tilt) ** 2)
    seam = np.float32(0.22 * 25.0) / seam_width * np.exp(-((outside / seam_width) ** 2))
    resin = 0.03 + 0.01 * grain + seam
    specks = np.clip(grain - 1.2, 0.0, None)
    cytoplasm = 0.34 + tone[fields.owner].astype(np.float32) + 0.05 * grain + 0.12 * specks
    canvas.density[...] = resin + inside * (cytoplasm - resin)
    canvas.membrane(Ellipsis, sd, MEMBRANE_HALF_WIDTH_NM, tilt=fields.tilt)
    thickness = max(2 * MEMBRANE_HALF_WIDTH_NM, pixel)
    canvas.labels[(sd >= -0.25 * pixel) & (sd < thickness)] = C.MEMBRANE


def _add_nucleus(canvas: Canvas, layout, k: int, obstacles: Obstacles, rng: np.random.Generator) -> None:
    seed = layout.seeds[k]
    inscribed = float(layout.signed_distance_at(seed)[0][0])
    radius = inscribed * rng.uniform(0.65, 0.85)
    if radius < 300.0:
        return
    center = seed + rng.normal(0.0, 0.08 * inscribed, 3)
    radii = radius * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.65, 0.9)])
    rotation = random_rotation(rng)
    paint_nucleus(canvas, center, radii, rotation, rng)
    obstacles.add(center, radius * 1.1 + 40.0)
    for _ in range(int(rng.integers(1, 4))):
        offset = rng.normal(0.0, 0.18 * radius, 3)
        offset *= min(1.0, 0.3 * radius / max(float(np.linalg.norm(offset)), 1e-6))
        paint_nucleolus(canvas, center + offset, radius * rng.uniform(0.18, 0.32))
