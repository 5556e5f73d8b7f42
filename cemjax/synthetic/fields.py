"""Random fields, coordinate grids and signed-distance primitives in physical units (nm).

Every array here is indexed (z, y, x). A 2D image is a volume with one z-section, so 2D and 3D share code:
objects are 3D and an image is their cross-section. Signed distances are positive inside an object.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

Spacing = tuple[float, float, float]


def smooth_noise(
    shape: tuple[int, int, int], spacing_nm: Spacing, correlation_nm: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth random field, about zero mean and unit variance, with feature size ``correlation_nm``.

    Standard-normal noise on a coarse lattice (one node per ``correlation_nm``) is interpolated with cubic
    splines, so the variance does not depend on the grid size (no per-array normalisation: a tiny grid gets
    a gentle slope, not an amplified one). Returns float32 of ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    steps = [max(correlation_nm / float(sp), 1.0) for sp in spacing_nm]
    coarse_shape = tuple(int(np.ceil(n / st)) + 4 for n, st in zip(shape, steps, strict=True))
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    # Coordinates of the fine samples on the coarse lattice; offset 1.5 keeps away from the spline edge.
    axes = [np.arange(n, dtype=np.float32) / st + 1.5 for n, st in zip(shape, steps, strict=True)]
    if all(st <= 1.0 for st in steps):
        field = coarse[tuple(slice(0, n) for n in shape)]
    else:
        field = _separable_cubic_resample(coarse, axes)
    return field.astype(np.float32)


def _separable_cubic_resample(coarse: np.ndarray, axes: list[np.ndarray]) -> np.ndarray:
    """Resample ``coarse`` at the separable positions ``axes`` (one 1D array per axis), cubic splines."""
    out = ndimage.spline_filter(coarse, order=3, output=np.float32)
    for axis, pos in enumerate(axes):
        # Sample one axis at a time: cheap 1D map_coordinates along that axis via a small weight matrix.
        n_coarse = out.shape[axis]
        weights = _cubic_bspline_matrix(pos, n_coarse)  # (n_fine, n_coarse)
        out = np.moveaxis(np.tensordot(weights, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return out.astype(np.float32)


def _cubic_bspline_matrix(pos: np.ndarray, n_coarse: int) -> np.ndarray:
    """Matrix W (len(pos), n_coarse) so that W @ coeffs evaluates a cubic B-spline at ``pos``."""
    base = np.floor(pos).astype(np.int64)
    weights = np.zeros((pos.size, n_coarse), dtype=np.float32)
    for offset in (-1, 0, 1, 2):
        idx = base + offset
        t = np.abs(pos - idx)
        w = np.where(t < 1, 2 / 3 - t**2 + t**3 / 2, np.where(t < 2, (2 - t) ** 3 / 6, 0.0))
        np.add.at(weights, (np.arange(pos.size), np.clip(idx, 0, n_coarse - 1)), w)
    return weights


def fine_grain(
    shape: tuple[int, int, int], spacing_nm: Spacing, grain_nm: float, rng: np.random.Generator
) -> np.ndarray:
    """Granular texture (ribosome-sized blobs): white noise blurred to ``grain_nm``, unit variance, float32."""
    sigma = [max(grain_nm / float(sp), 0.35) for sp in spacing_nm]
    white = rng.standard_normal(shape).astype(np.float32)
    grain = ndimage.gaussian_filter(white, sigma, mode="wrap", truncate=3.0)
    grain /= max(float(grain.std()), 1e-6)
    return grain


def warped_coordinates(
    shape: tuple[int, int, int],
    spacing_nm: Spacing,
    rng: np.random.Generator,
    warp_nm: tuple[float, float] = (60.0, 12.0),
    correlation_nm: tuple[float, float] = (1500.0, 250.0),
) -> list[np.ndarray]:
    """Physical voxel-centre coordinates (z, y, x) in nm, displaced by a smooth two-scale warp.

    The warp makes every shape wobble the same way whatever the sampling, so an anisotropic volume and an
    isotropic one of the same scene agree. ``warp_nm`` are the displacement amplitudes (std, nm) for the
    coarse and fine scales. Returns three float32 arrays of ``shape``.
    """
    coords = []
    for axis in range(3):
        n = shape[axis]
        base = (np.arange(n, dtype=np.float32) + 0.5) * float(spacing_nm[axis])
        base = base - (n * float(spacing_nm[axis])) / 2.0  # centre the grid on 0 (2D image: the plane z=0)
        view = [1, 1, 1]
        view[axis] = n
        displacement = sum(
            amp * smooth_noise(shape, spacing_nm, corr, rng) for amp, corr in zip(warp_nm, correlation_nm, strict=True)
        )
        coords.append((base.reshape(view) + displacement).astype(np.float32))
    return coords


def grid_extent(shape: tuple[int, int, int], spacing_nm: Spacing) -> tuple[np.ndarray, np.ndarray]:
    """Physical (lo, hi) corners in nm of a grid built by :func:`warped_coordinates` (centred on 0)."""
    size = np.asarray(shape, np.float64) * np.asarray(spacing_nm, np.float64)
    return -size / 2.0, size / 2.0


def warped_box(
    coords: list[np.ndarray], center: np.ndarray, radius_nm: float, spacing_nm: Spacing
) -> tuple[slice, slice, slice] | None:
    """Voxel slices whose warped coordinates may fall within ``radius_nm`` of ``center`` (warped, nm).

    The sphere is moved back by the warp displacement at the nearest voxel; a margin of 60 nm + 20 % of the
    radius covers how much the smooth displacement can change across it. None when it misses the grid.
    """
    shape = coords[0].shape
    center = np.asarray(center, np.float64)
    spacing = np.asarray(spacing_nm, np.float64)
    lo = -np.asarray(shape, np.float64) * spacing / 2.0
    idx = np.clip((center - lo) // spacing, 0, np.asarray(shape) - 1).astype(np.int64)
    grid_point = lo + (idx + 0.5) * spacing
    key = tuple(int(i) for i in idx)
    displacement = np.array([coords[0][key], coords[1][key], coords[2][key]], np.float64) - grid_point
    moved = center - displacement
    reach = radius_nm * 1.2 + 60.0
    start = np.maximum(np.floor((moved - reach - lo) / spacing).astype(np.int64), 0)
    stop = np.minimum(np.ceil((moved + reach - lo) / spacing).astype(np.int64) + 1, shape)
    if np.any(start >= stop):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def sd_sphere(coords: list[np.ndarray], center: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (nm, positive inside) to a sphere."""
    d2 = sum((c - np.float32(center[i])) ** 2 for i, c in enumerate(coords))
    return np.float32(radius) - np.sqrt(d2)


def sd_capsule(coords: list[np.ndarray], end_a: np.ndarray, end_b: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (nm, positive inside) to a capsule: the segment a–b swept by a sphere."""
    axis = end_b - end_a
    length2 = float(axis @ axis) or 1e-6
    rel = [c - np.float32(end_a[i]) for i, c in enumerate(coords)]
    t = np.clip(sum(r * np.float32(axis[i]) for i, r in enumerate(rel)) / np.float32(length2), 0.0, 1.0)
    d2 = sum((r - t * np.float32(axis[i])) ** 2 for i, r in enumerate(rel))
    return np.float32(radius) - np.sqrt(d2)


def sd_ellipsoid(coords: list[np.ndarray], center: np.ndarray, radii: np.ndarray, rotation: np.ndarray):
    """Approximate signed distance (nm) to an ellipsoid with semi-axes ``radii`` along ``rotation`` rows."""
    rel = [c - np.float32(center[i]) for i, c in enumerate(coords)]
    scaled2 = 0.0
    for k in range(3):
        proj = sum(r * np.float32(rotation[k, i]) for i, r in enumerate(rel))
        scaled2 = scaled2 + (proj / np.float32(radii[k])) ** 2
    return (1.0 - np.sqrt(scaled2)) * np.float32(np.min(radii))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random 3×3 rotation matrix (float64)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def random_unit_vector(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random direction in 3D (float64, norm 1)."""
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def band(sd: np.ndarray, center_nm: float, half_width_nm: float) -> np.ndarray:
    """Gaussian profile exp(-((sd - centre) / half_width)²): a thin sheet (membrane) at one distance."""
    return np.exp(-(((sd - np.float32(center_nm)) / np.float32(half_width_nm)) ** 2))


def coverage(sd: np.ndarray, pixel_nm: float) -> np.ndarray:
    """Anti-aliased inside fraction in [0, 1] from a signed distance (one pixel wide ramp)."""
    return np.clip(sd / np.float32(pixel_nm) + 0.5, 0.0, 1.0)
