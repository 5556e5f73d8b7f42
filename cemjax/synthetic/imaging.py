"""Imaging model: stain density → detected signal → stored pixel values.

signal = illumination × exp(−contrast · density) ⊛ PSF, then Poisson shot noise at ``dose`` electrons per
pixel plus Gaussian read noise; volumes also get slice-to-slice gain/offset drift (a random walk along z).
The signal is bright where there is little stain (TEM convention: resin bright, membranes dark). FIB-SEM
detectors see the stain bright; :func:`invert_contrast` gives that view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cemjax.synthetic.fields import Spacing, smooth_noise

OUTPUT_DTYPES = ("uint8", "uint16", "float32")


@dataclass(frozen=True)
class Imaging:
    """Microscope knobs.

    contrast: optical density per unit stain; psf_sigma_nm: Gaussian PSF std in-plane (nm);
    psf_sigma_z_nm: PSF std along z (nm, volumes only); dose: electrons per pixel at full transmission;
    read_noise: Gaussian noise std in units of full transmission; illumination: relative amplitude of the
    smooth uneven-illumination field; drift: per-slice random-walk std of gain and offset (volumes).
    """

    contrast: float = 2.2
    psf_sigma_nm: float = 4.0
    psf_sigma_z_nm: float = 4.0
    dose: float = 60.0
    read_noise: float = 0.02
    illumination: float = 0.06
    drift: float = 0.008


def simulate_signal(
    density: np.ndarray, spacing_nm: Spacing, rng: np.random.Generator, imaging: Imaging = Imaging()
) -> np.ndarray:
    """Noisy detected signal, float32 (z, y, x), about 0–1.1 (1 = unattenuated beam)."""
    shape = density.shape
    transmitted = np.exp(-np.float32(imaging.contrast) * density).astype(np.float32)
    sigma = [imaging.psf_sigma_z_nm / spacing_nm[0], *(imaging.psf_sigma_nm / s for s in spacing_nm[1:])]
    sigma = [s if (n > 1 and s > 0.2) else 0.0 for s, n in zip(sigma, shape, strict=True)]
    if any(sigma):
        transmitted = ndimage.gaussian_filter(transmitted, sigma, mode="reflect", truncate=3.0)
    field_size = max(shape[1] * spacing_nm[1], shape[2] * spacing_nm[2])
    flat_spacing = (1.0, *spacing_nm[1:])
    uneven = smooth_noise((1, *shape[1:]), flat_spacing, field_size / 1.5, rng)
    transmitted *= 1.0 + np.float32(imaging.illumination) * uneven
    if shape[0] > 1 and imaging.drift > 0:
        gain = 1.0 + np.cumsum(rng.normal(0.0, imaging.drift, shape[0]))
        offset = np.cumsum(rng.normal(0.0, imaging.drift / 2, shape[0]))
        transmitted = transmitted * gain[:, None, None].astype(np.float32) + offset[:, None, None]
    np.clip(transmitted, 0.0, None, out=transmitted)
    counts = rng.poisson(transmitted * np.float32(imaging.dose)).astype(np.float32)
    signal = counts / np.float32(imaging.dose)
    signal += rng.normal(0.0, imaging.read_noise, shape).astype(np.float32)
    return signal


def quantize(signal: np.ndarray, dtype: str) -> np.ndarray:
    """Store a signal (≈0–1.1) as a detector would.

    uint8: 8 + 215·signal (resin ≈ 210, dense stain ≈ 40); uint16: 1500 + 52000·signal (most of the range);
    float32: the signal itself (physical units: fraction of the unattenuated beam). Ints are clipped.
    """
    if dtype == "float32":
        return signal.astype(np.float32)
    if dtype == "uint8":
        return np.clip(np.round(8.0 + 215.0 * signal), 0, 255).astype(np.uint8)
    if dtype == "uint16":
        return np.clip(np.round(1500.0 + 52000.0 * signal), 0, 65535).astype(np.uint16)
    raise ValueError(f"dtype must be one of {OUTPUT_DTYPES}, got {dtype}")


def invert_contrast(image: np.ndarray) -> np.ndarray:
    """Contrast inversion: ints x → max(dtype) − x; floats x → (min + max) − x (same value range)."""
    if image.dtype.kind == "u":
        return (np.iinfo(image.dtype).max - image).astype(image.dtype)
    if image.dtype.kind == "f":
        return (float(image.min()) + float(image.max()) - image).astype(image.dtype)
    raise TypeError(f"cannot invert {image.dtype}")
