"""Which cross-sections to take from a volume (docs/method.md §1.2) and how to split them into work units.

anisotropy = |sx − sz| / sx; above the threshold (paper 0.2, v2 0.25) only xy planes are cut, otherwise xy,
xz and yz. A 2D image is a single xy plane. Volumes without known spacing are treated as anisotropic
(xy only): cutting xz/yz planes from a stack of unknown z step could produce stretched patches.
"""

from __future__ import annotations

from dataclasses import dataclass

from cemjax.io.formats import EMArray
from cemjax.io.planes import AXES, plane_count, planes_per_block

ANISOTROPY_THRESHOLD = 0.2


def anisotropy(spacing: tuple[float, float, float]) -> float:
    """|sx − sz| / sx for spacing (sz, sy, sx) (any one length unit)."""
    sz, _, sx = spacing
    return abs(sx - sz) / sx


def section_axes(
    ndim: int, spacing: tuple[float, float, float] | None, threshold: float = ANISOTROPY_THRESHOLD
) -> tuple[str, ...]:
    """Axes to cut: ('xy',) for 2D images, anisotropic or unknown-spacing volumes; else ('xy', 'xz', 'yz')."""
    if ndim == 2 or spacing is None or anisotropy(spacing) > threshold:
        return ("xy",)
    return AXES


@dataclass(frozen=True)
class Unit:
    """One unit of patching work: planes [start, stop) along `axis` of one file of one source."""

    source: str
    path: str
    axis: str
    start: int
    stop: int

    @property
    def uid(self) -> str:
        """Stable id, unique within a source (used for temp file names and ordering)."""
        return f"{self.path}|{self.axis}|{self.start:08d}"


def plan_units(source: str, em: EMArray, axes: tuple[str, ...], budget: int, max_planes: int = 64) -> list[Unit]:
    """Split every requested axis of `em` into units of ≤ `max_planes` planes and ≤ about `budget` bytes."""
    units = []
    for axis in axes:
        n = plane_count(em, axis)
        step = max(1, min(max_planes, planes_per_block(em, axis, budget)))
        units += [Unit(source, em.path, axis, s, min(n, s + step)) for s in range(0, n, step)]
    return units
