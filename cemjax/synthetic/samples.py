"""One-call EM images and volumes: scene → imaging → stored dtype (the public entry points)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cemjax.synthetic.imaging import Imaging, invert_contrast, quantize, simulate_signal
from cemjax.synthetic.scene import make_scene


@dataclass
class EMSample:
    """image: (H, W) or (Z, H, W) in ``dtype``; labels: uint8 class ids of the same shape (see CLASS_NAMES);
    spacing_nm: (sy, sx) or (sz, sy, sx) in nm; inverted: stain shown bright (FIB-SEM detector view);
    cell_ids: uint16 cell instance per pixel (0 outside cells)."""

    image: np.ndarray
    labels: np.ndarray
    spacing_nm: tuple[float, ...]
    inverted: bool
    cell_ids: np.ndarray

    @property
    def anisotropy(self) -> float:
        """|sx − sz| / sx as the curation defines it (0 for 2D images)."""
        if len(self.spacing_nm) == 2:
            return 0.0
        return abs(self.spacing_nm[2] - self.spacing_nm[0]) / self.spacing_nm[2]


def make_em_image(
    shape: tuple[int, int] = (512, 512),
    pixel_nm: float = 8.0,
    style: str = "neuropil",
    seed: int = 0,
    dtype: str = "uint8",
    invert: bool = False,
    imaging: Imaging | None = None,
    section_thickness_nm: float = 50.0,
    noise_seed: int | None = None,
) -> EMSample:
    """A TEM-like section (resin bright, membranes dark unless ``invert``). Deterministic in ``seed``.

    noise_seed: re-image the same scene with other noise/illumination (a repeated frame); default: seed.
    """
    rng = np.random.default_rng(seed)
    scene = make_scene(shape, (pixel_nm, pixel_nm), style, rng, section_thickness_nm)
    noise_rng = rng if noise_seed is None else np.random.default_rng([seed, noise_seed])
    signal = simulate_signal(scene.density, scene.spacing_nm, noise_rng, imaging or Imaging())
    image = quantize(signal, dtype)[0]
    image = invert_contrast(image) if invert else image
    return EMSample(image, scene.labels[0], (float(pixel_nm), float(pixel_nm)), invert, scene.cell_ids[0])


def make_em_volume(
    shape: tuple[int, int, int] = (64, 128, 128),
    spacing_nm: tuple[float, float, float] = (8.0, 8.0, 8.0),
    style: str = "neuropil",
    seed: int = 0,
    dtype: str = "uint8",
    invert: bool = False,
    imaging: Imaging | None = None,
) -> EMSample:
    """A FIB-SEM/SBF-SEM-like volume (z, y, x) with voxel size ``spacing_nm`` (sz, sy, sx).

    Use ``invert=True`` for the raw detector view (stain bright). Anisotropic spacing such as (40, 8, 8)
    samples the same physical objects with 5× fewer sections. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    scene = make_scene(shape, spacing_nm, style, rng)
    signal = simulate_signal(scene.density, scene.spacing_nm, rng, imaging or Imaging())
    volume = quantize(signal, dtype)
    volume = invert_contrast(volume) if invert else volume
    return EMSample(volume, scene.labels, tuple(float(s) for s in spacing_nm), invert, scene.cell_ids)
