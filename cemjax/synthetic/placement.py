"""Non-overlapping placement of organelles inside cells (rejection sampling against bounding spheres)."""

from __future__ import annotations

import numpy as np

from cemjax.synthetic.cells import CellLayout
from cemjax.synthetic.fields import random_unit_vector


class Obstacles:
    """Bounding spheres (centre nm (z, y, x), radius nm) of everything placed so far."""

    def __init__(self) -> None:
        self._centers = np.zeros((0, 3))
        self._radii = np.zeros((0,))

    def hits(self, center: np.ndarray, radius: float) -> bool:
        """True when a sphere would overlap a placed one."""
        if not self._radii.size:
            return False
        gaps = np.linalg.norm(self._centers - center, axis=1) - self._radii
        return bool(np.any(gaps < radius))

    def add(self, center: np.ndarray, radius: float) -> None:
        self._centers = np.vstack([self._centers, center])
        self._radii = np.append(self._radii, radius)


def capsule_spheres(end_a: np.ndarray, end_b: np.ndarray, radius: float) -> list[np.ndarray]:
    """Centres of spheres (radius ``radius``) that cover a capsule, spaced one radius apart."""
    n = max(int(np.ceil(np.linalg.norm(end_b - end_a) / radius)), 1)
    return [end_a + (end_b - end_a) * t for t in np.linspace(0.0, 1.0, n + 1)]


def fits(layout: CellLayout, obstacles: Obstacles, centers: list[np.ndarray], radius: float, margin: float) -> bool:
    """All spheres lie inside one living cell, ``margin`` nm from its membrane, and hit nothing placed."""
    sd, owner = layout.signed_distance_at(np.asarray(centers))
    if np.any(sd < radius + margin) or np.any(owner != owner[0]):
        return False
    return not any(obstacles.hits(c, radius + margin / 2) for c in centers)


def sample_capsule(rng: np.random.Generator, center: np.ndarray, radius_nm: tuple[float, float], half_length_nm: float):
    """Random capsule (end_a, end_b, radius) around ``center``; half length up to ``half_length_nm``."""
    radius = rng.uniform(*radius_nm)
    half = rng.uniform(0.0, 1.0) ** 1.5 * half_length_nm
    direction = random_unit_vector(rng)
    return center - half * direction, center + half * direction, radius
