"""Painting organelles into a stain-density canvas and its label map.

Density is "amount of heavy-metal stain" per voxel, about 0 (resin) to 1 (lysosome, nucleolus); the imaging
model turns it into transmitted intensity. Each painter works only inside the object's bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cemjax.synthetic import classes as C
from cemjax.synthetic.fields import (
    Spacing,
    band,
    coverage,
    sd_capsule,
    sd_ellipsoid,
    sd_sphere,
    warped_box,
)

MEMBRANE_HALF_WIDTH_NM = 3.5  # a stained bilayer is ~7 nm thick


@dataclass
class Canvas:
    """What painters draw on; every array has the grid's shape (z, y, x).

    density: float32 stain density; labels: uint8 class ids (:mod:`classes`); coords: warped nm coordinates;
    grain: float32 unit-variance fine texture; blotch: float32 unit-variance texture at ~100 nm.
    """

    density: np.ndarray
    labels: np.ndarray
    coords: list[np.ndarray]
    grain: np.ndarray
    blotch: np.ndarray
    spacing_nm: Spacing

    @property
    def pixel_nm(self) -> float:
        """In-plane pixel size (nm), the scale of anti-aliasing."""
        return float(min(self.spacing_nm[1], self.spacing_nm[2]))

    def membrane_width(self) -> tuple[float, float]:
        """(half width nm, peak stain): thin sheets widen to ≥ 0.6 pixel and fade a little as they do."""
        half = max(MEMBRANE_HALF_WIDTH_NM, 0.6 * self.pixel_nm)
        return half, 0.75 * float(np.sqrt(MEMBRANE_HALF_WIDTH_NM / half)) + 0.15

    def box(self, center: np.ndarray, radius_nm: float):
        """(slices, local coordinate views) around a sphere in warped coordinates, or None if outside."""
        box = warped_box(self.coords, center, radius_nm, self.spacing_nm)
        if box is None:
            return None
        return box, [c[box] for c in self.coords]

    def fill(self, box, sd: np.ndarray, value: np.ndarray | float, label: int) -> None:
        """Blend ``value`` inside sd > 0 (anti-aliased) and write ``label`` there."""
        alpha = coverage(sd, self.pixel_nm)
        self.density[box] += alpha * (value - self.density[box])
        self.labels[box][sd > 0] = label

    def membrane(self, box, sd: np.ndarray, at_nm: float, strength: float = 1.0, tilt=None) -> None:
        """Darken a bilayer lying where sd == at_nm.

        tilt: optional |z component| of the membrane normal. A section of thickness sz averages the sheet
        over sz·tilt of signed distance, so grazing membranes spread out and fade (stain is conserved).
        """
        half, peak = self.membrane_width()
        if tilt is None:
            self.density[box] += np.float32(strength * peak) * band(sd, at_nm, half)
            return
        spread = np.sqrt(np.float32(half**2) + (np.float32(self.spacing_nm[0] / 2.5) * tilt) ** 2)
        profile = np.exp(-(((sd - np.float32(at_nm)) / spread) ** 2))
        self.density[box] += np.float32(strength * peak * half) / spread * profile


def paint_mitochondrion(canvas: Canvas, end_a, end_b, radius: float, rng: np.random.Generator) -> None:
    """Capsule mitochondrion: outer + inner membrane 18 nm apart, darker matrix, lamellar cristae."""
    center = (end_a + end_b) / 2
    found = canvas.box(center, radius + np.linalg.norm(end_b - end_a) / 2)
    if found is None:
        return
    box, local = found
    sd = sd_capsule(local, end_a, end_b, radius)
    matrix = 0.5 + rng.uniform(-0.06, 0.06) + 0.05 * canvas.grain[box]
    canvas.fill(box, sd, matrix, C.MITOCHONDRIA)
    canvas.membrane(box, sd, MEMBRANE_HALF_WIDTH_NM)
    inner_at = MEMBRANE_HALF_WIDTH_NM + 18.0
    canvas.density[box] -= np.float32(0.12) * band(sd, MEMBRANE_HALF_WIDTH_NM + 9.0, 5.0)  # light gap
    canvas.membrane(box, sd, inner_at)
    # Cristae: sheets across the long axis, wobbling, reaching from the inner membrane some way in.
    axis = end_b - end_a
    axis = axis / (np.linalg.norm(axis) or 1.0) + 0.35 * rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    period = rng.uniform(45.0, 80.0)
    along = sum((c - np.float32(center[i])) * np.float32(axis[i]) for i, c in enumerate(local))
    phase = along / np.float32(period) + 0.25 * canvas.blotch[box]
    crista_sd = (phase - np.round(phase)) * np.float32(period)  # nm to the nearest crista sheet
    reach = radius * rng.uniform(0.6, 1.0)
    inside = np.clip((sd - inner_at) / 6.0, 0, 1) * np.clip((reach - sd) / 10.0 + 1, 0, 1)
    half, peak = canvas.membrane_width()
    canvas.density[box] += np.float32(1.1 * peak) * inside * band(crista_sd, 0.0, half * 1.8)


def paint_nucleus(canvas: Canvas, center, radii, rotation, rng: np.random.Generator) -> None:
    """Ellipsoidal nucleus: double envelope, pale nucleoplasm, peripheral and clumped heterochromatin."""
    found = canvas.box(center, float(np.max(radii)) * 1.15)
    if found is None:
        return
    box, local = found
    sd = sd_ellipsoid(local, center, radii, rotation) + np.float32(8.0) * canvas.blotch[box]
    nucleoplasm = 0.27 + 0.05 * canvas.grain[box]
    canvas.fill(box, sd, nucleoplasm, C.NUCLEUS)
    # Heterochromatin: a patchy rim under the envelope plus clumps where the blotch texture peaks.
    rim = rng.uniform(50.0, 140.0)
    blotch = canvas.blotch[box]
    hetero_sd = np.maximum(rim * (1 + 0.9 * blotch) - sd, 150.0 * (blotch - 1.1))
    hetero = coverage(hetero_sd, canvas.pixel_nm * 2) * coverage(sd - 40.0, canvas.pixel_nm)
    canvas.density[box] += hetero * np.float32(0.33)
    canvas.membrane(box, sd, MEMBRANE_HALF_WIDTH_NM)
    canvas.density[box] -= np.float32(0.06) * band(sd, 16.0, 6.0)  # perinuclear cistern
    canvas.membrane(box, sd, 28.0)


def paint_nucleolus(canvas: Canvas, center, radius: float) -> None:
    """Dense, coarse-grained round nucleolus (no membrane)."""
    found = canvas.box(center, radius * 1.2)
    if found is None:
        return
    box, local = found
    sd = sd_sphere(local, center, radius) + np.float32(0.12 * radius) * canvas.blotch[box]
    value = 0.72 + 0.12 * canvas.grain[box] + 0.08 * canvas.blotch[box]
    canvas.fill(box, sd, value, C.NUCLEOLUS)


def paint_lysosome(canvas: Canvas, center, radius: float, rng: np.random.Generator) -> None:
    """Dense, heterogeneous lysosome with a single membrane and occasional pale inclusions."""
    found = canvas.box(center, radius * 1.2)
    if found is None:
        return
    box, local = found
    sd = sd_sphere(local, center, radius) + np.float32(0.06 * radius) * canvas.blotch[box]
    value = rng.uniform(0.7, 0.9) + 0.1 * canvas.grain[box] - 0.18 * np.clip(canvas.blotch[box] - 0.8, 0, 1)
    canvas.fill(box, sd, value, C.LYSOSOME)
    canvas.membrane(box, sd, MEMBRANE_HALF_WIDTH_NM)


def paint_vesicle(canvas: Canvas, center, radius: float, dense_core: bool = False) -> None:
    """Round vesicle: membrane ring around a pale (or dense-core) lumen."""
    found = canvas.box(center, radius)
    if found is None:
        return
    box, local = found
    sd = sd_sphere(local, center, radius)
    canvas.fill(box, sd, 0.62 if dense_core else 0.18, C.VESICLE)
    canvas.membrane(box, sd, MEMBRANE_HALF_WIDTH_NM, strength=1.1)
