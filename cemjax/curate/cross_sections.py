"""Which cross-sections to take from a volume (docs/method.md §1.2) and how to split them into work units.

anisotropy = |sx − sz| / sx; above the threshold only xy planes are cut, otherwise xy, xz and yz. A 2D image is
a single xy plane. Two rule sets (`RULES`): "paper" (the reference's v0.1, which made CEM500K: threshold 0.2)
and "v2" (its later code: threshold 0.25, and files whose name holds "video" are cut in xy only). Volumes
without known spacing are cut in xy only (cemjax's choice: an unknown z step could stretch xz/yz patches).
Every axis left out gets a note saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from cemjax.io.formats import EMArray
from cemjax.io.planes import AXES, plane_count, planes_per_block

ANISOTROPY_THRESHOLD = 0.2
RULES = {"paper": {"anisotropy": 0.2, "video_xy_only": False, "dedup_2d": "per_image"},
         "v2": {"anisotropy": 0.25, "video_xy_only": True, "dedup_2d": "none"}}  # fmt: skip


def anisotropy(spacing: tuple[float, float, float]) -> float:
    """|sx − sz| / sx for spacing (sz, sy, sx) (any one length unit)."""
    sz, _, sx = spacing
    return abs(sx - sz) / sx


def section_axes(
    ndim: int, spacing: tuple[float, float, float] | None, threshold: float = ANISOTROPY_THRESHOLD
) -> tuple[str, ...]:
    """Axes to cut: ('xy',) for 2D images, anisotropic or unknown-spacing volumes; else ('xy', 'xz', 'yz')."""
    return axes_and_note(ndim, spacing, threshold)[0]


def axes_and_note(
    ndim: int, spacing: tuple[float, float, float] | None, threshold: float = ANISOTROPY_THRESHOLD,
    video: bool = False,
) -> tuple[tuple[str, ...], str]:  # fmt: skip
    """(axes to cut, why xz/yz are left out — "" when all three are cut or the input is 2D)."""
    if ndim == 2:
        return ("xy",), ""
    if video:
        return ("xy",), "xy only: a video (its name says so; v2 rules)"
    if spacing is None:
        return ("xy",), "xy only: no voxel spacing in the file (give --spacing sz,sy,sx or a sidecar)"
    if anisotropy(spacing) > threshold:
        return ("xy",), f"xy only: anisotropy {anisotropy(spacing):.2f} > {threshold:g} (spacing {spacing} nm)"
    return AXES, ""


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
