"""Uninformative content, the negatives of the curation's quality filter (docs/method.md §1.5).

Kinds (:data:`JUNK_KINDS`), each a uint8 image whose defining property tests can check:

- ``empty_resin``: bright, flat, noisy (mean > 170, no structure above the noise: low gradient energy).
- ``saturated``: ≥ 90 % of pixels at 255 (overexposed / burnt-out area).
- ``black``: ≥ 90 % of pixels at 0 (beam blocked, grid bar).
- ``zero_padding``: real EM content with an exact-zero out-of-sample border or wedge covering ≥ 55 % of
  the pixels, as left by registration or rotation of a volume.
- ``featureless``: smooth, heavily blurred gray (out of focus / charging): tiny local variance.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cemjax.synthetic.samples import make_em_image

JUNK_KINDS: tuple[str, ...] = ("empty_resin", "saturated", "black", "zero_padding", "featureless")


def add_zero_padding(image: np.ndarray, rng: np.random.Generator, fraction: float = 0.3) -> np.ndarray:
    """Zero (exactly) an out-of-sample region covering about ``fraction`` of a 2D image or every slice.

    The region is the far side of a random line (a rotated, shifted volume's empty corner); returns a copy.
    """
    out = np.array(image, copy=True)
    h, w = out.shape[-2:]
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = (yy - h / 2) * np.sin(angle) + (xx - w / 2) * np.cos(angle)
    cut = np.quantile(proj, 1.0 - fraction)
    out[..., proj > cut] = 0
    return out


def make_junk_image(kind: str, shape: tuple[int, int] = (224, 224), seed: int = 0) -> np.ndarray:
    """A uint8 (H, W) image of one :data:`JUNK_KINDS` kind. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    h, w = shape
    noise = rng.normal(0.0, 1.0, shape)
    if kind == "empty_resin":
        ramp = np.linspace(-1, 1, w)[None, :] * rng.uniform(-6, 6)
        image = rng.uniform(190, 225) + ramp + noise * rng.uniform(3, 8)
    elif kind == "saturated":
        image = 255.0 - np.abs(noise) * 0.2  # clipped detector: a little read noise below full scale
        image[rng.random(shape) < rng.uniform(0.0, 0.05)] = rng.uniform(200, 250)
    elif kind == "black":
        image = np.abs(noise) * 0.2
        image[rng.random(shape) < rng.uniform(0.0, 0.05)] = rng.uniform(5, 40)
    elif kind == "zero_padding":
        em = make_em_image(shape, rng.uniform(6, 14), str(rng.choice(["neuropil", "tissue"])), seed=seed).image
        return add_zero_padding(em, rng, rng.uniform(0.6, 0.9))
    elif kind == "featureless":
        coarse = ndimage.gaussian_filter(rng.normal(0, 1, shape), sigma=max(h, w) / 6, mode="wrap")
        coarse = coarse / (coarse.std() + 1e-9) * rng.uniform(4, 12)
        image = rng.uniform(70, 180) + coarse + noise * rng.uniform(0.5, 2.0)
    else:
        raise ValueError(f"kind must be one of {JUNK_KINDS}, got {kind!r}")
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def make_quality_patches(
    n: int, seed: int = 0, size: int = 224, bad_fraction: float = 0.5
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Labelled patches for training the quality classifier.

    Returns (patches uint8 (n, size, size), informative uint8 (n,) with 1 = keep, kinds: per patch
    "good" or a junk kind). Good patches vary style, pixel size (5–15 nm), contrast inversion and noise.
    Order is shuffled; deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    n_bad = int(round(n * bad_fraction))
    kinds = [str(JUNK_KINDS[i % len(JUNK_KINDS)]) for i in range(n_bad)] + ["good"] * (n - n_bad)
    kinds = [kinds[i] for i in rng.permutation(n)]
    patches = np.zeros((n, size, size), np.uint8)
    for i, kind in enumerate(kinds):
        sub_seed = int(rng.integers(2**31))
        if kind == "good":
            patches[i] = make_em_image(
                (size, size),
                pixel_nm=float(rng.uniform(5, 15)),
                style=str(rng.choice(["neuropil", "tissue", "culture"], p=[0.45, 0.45, 0.1])),
                seed=sub_seed,
                invert=bool(rng.random() < 0.3),
            ).image
        else:
            patches[i] = make_junk_image(kind, (size, size), sub_seed)
    informative = np.array([k == "good" for k in kinds], np.uint8)
    return patches, informative, tuple(kinds)
