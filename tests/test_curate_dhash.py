"""dhash64 equals imagehash.dhash(PIL image, hash_size=8) bit for bit; lanczos_resize equals PIL's resize."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cemjax.curate.dhash import dhash64, dhash64_pil, hamming, lanczos_resize
from cemjax.synthetic.junk import make_junk_image
from cemjax.synthetic.samples import make_em_image


def _patch_zoo(n: int, seed: int = 0) -> np.ndarray:
    """Uniform noise, smooth noise at many scales, gradients, flat and near-flat, EM-like and junk patches."""
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, 256, (224, 224), dtype=np.uint8) for _ in range(n // 4)]
    for s in rng.uniform(0.3, 20, n // 4):
        out.append(np.clip(ndimage.gaussian_filter(rng.normal(128, 80, (224, 224)), s) * 3 - 256, 0, 255))
    for _ in range(n // 8):
        ramp = np.add.outer(np.arange(224) * rng.uniform(-1, 1), np.arange(224) * rng.uniform(-1, 1))
        out.append(np.clip(ramp + rng.integers(0, 256) + rng.integers(-1, 2, (224, 224)), 0, 255))
    out += [np.full((224, 224), v) for v in (0, 1, 128, 254, 255)]
    em = make_em_image((448, 448 * 2), seed=seed).image
    out += [em[y : y + 224, x : x + 224] for y in (0, 224) for x in (0, 224, 448, 672)]
    out += [make_junk_image(k, seed=i) for i, k in enumerate(["empty_resin", "saturated", "black", "featureless"])]
    while len(out) < n:
        out.append(rng.integers(100, 103, (224, 224)))  # tiny differences: rounding boundaries
    return np.stack(out).astype(np.uint8)


def test_dhash_equals_imagehash_on_many_patches():
    patches = _patch_zoo(600)
    ours = dhash64(patches, batch=256)
    ref = np.array([dhash64_pil(p) for p in patches], np.uint64)
    assert np.array_equal(ours, ref), np.flatnonzero(ours != ref)[:10]
    assert np.array_equal(dhash64(patches, threads=2), ref)


@pytest.mark.parametrize("shape", [(224, 224), (150, 224), (224, 130), (97, 301), (8, 224), (224, 9), (30, 1100)])
def test_lanczos_resize_equals_pil(shape):
    rng = np.random.default_rng(1)
    patches = rng.integers(0, 256, (40, *shape), dtype=np.uint8)
    patches[::2] = ndimage.uniform_filter(patches[::2], size=(1, 5, 5))
    want = np.stack([np.asarray(Image.fromarray(p).resize((9, 8), Image.Resampling.LANCZOS)) for p in patches])
    assert np.array_equal(lanczos_resize(patches, 9, 8), want)


def test_hamming_and_bit_order():
    flat = np.full((1, 224, 224), 7, np.uint8)
    assert dhash64(flat)[0] == 0  # no column is brighter than its left neighbour
    ramp = np.tile(np.arange(224, dtype=np.uint8), (224, 1))[None]
    assert dhash64(ramp)[0] == np.uint64(2**64 - 1)  # every column brighter: all 64 bits set
    assert hamming(np.uint64(0b1011), np.array([0, 1, 2**63], np.uint64)).tolist() == [3, 2, 4]
