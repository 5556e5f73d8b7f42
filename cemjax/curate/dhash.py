"""Vectorised difference hash, bit-identical to `imagehash.dhash(Image.fromarray(patch), hash_size=8)`.

imagehash converts to 'L', resizes to (hash_size + 1) × hash_size with PIL's LANCZOS filter and sets bit
(r, c) when pixel (r, c + 1) > pixel (r, c). PIL resamples separably — a horizontal pass into a uint8
intermediate, then a vertical pass — with Lanczos-3 weights rounded to 22-bit fixed point and a rounding
offset of 2^21 before the shift. `_pil_weights` rebuilds those integer weights with the same double
arithmetic as Pillow's `precompute_coeffs`; both passes then run as matrix products that are exact
because every product and partial sum is an integer below 2^53 (a float32 product does the bulk and only
entries near a rounding boundary are recomputed in float64). The uint8 → float32 cast and the product run
in cache-sized pieces (casting a whole batch at once costs more than the product: page faults), while the
rounding and the second pass run once per batch of `dhash64(batch=...)` patches, so numpy's per-call
overhead is amortised. One BLAS thread per process is fastest here (OPENBLAS_NUM_THREADS=1; two threads
on two shared cores measured slower). `tests/test_curate_dhash.py` checks equality against imagehash itself.

Hash layout: a uint64 whose most significant bit is bit (0, 0), row-major — the same order as
`int(str(imagehash.dhash(...)), 16)`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

PRECISION_BITS = 22
LANCZOS_SUPPORT = 3.0
CHUNK_ROWS = 896  # rows cast to float32 and multiplied at a time (≈ 0.8 MB: stays in cache)


def _lanczos(x: float) -> float:
    def sinc(v: float) -> float:
        if v == 0.0:
            return 1.0
        v = v * math.pi
        return math.sin(v) / v

    if -3.0 <= x < 3.0:
        return sinc(x) * sinc(x / 3)
    return 0.0


@functools.cache
def _pil_weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point LANCZOS weights as float64 [in_size, out_size] (integers, scale 2^22)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = LANCZOS_SUPPORT * filterscale
    inv = 1.0 / filterscale
    w = np.zeros((in_size, out_size), np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = [_lanczos((x + xmin - center + 0.5) * inv) for x in range(xmax)]
        ww = 0.0
        for v in k:  # sequential sum, as in C
            ww += v
        for x, v in enumerate(k):
            v = v / ww if ww != 0.0 else v
            w[xmin + x, xx] = int(-0.5 + v * (1 << PRECISION_BITS)) if v < 0 else int(0.5 + v * (1 << PRECISION_BITS))
    return w


def _fixed_point_pass(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pillow's clip8((2^21 + Σ v·k) >> 22) over the last axis of `values` (integer-valued, 0..255).

    A float32 product does the bulk; it is exact except for accumulated rounding error, bounded rigorously
    by γ_K·Σ|v·k| (any summation order, FMA or not). Entries whose float32 value lies within that bound of a
    rounding boundary (about 1% of them) are recomputed exactly in float64 (all partial sums are integers
    below 2^53), so the result equals Pillow's integer arithmetic bit for bit.
    """
    shape = values.shape
    x = values.reshape(-1, shape[-1])
    w32 = (weights * (1.0 / (1 << PRECISION_BITS))).astype(np.float32)  # exact: integers < 2^23 over 2^22
    v = np.empty((len(x), weights.shape[1]), np.float32)
    buf = np.empty((min(len(x), CHUNK_ROWS), x.shape[1]), np.float32)
    for s in range(0, len(x), CHUNK_ROWS):  # cast + multiply in cache-sized pieces into one result
        c = x[s : s + CHUNK_ROWS]
        np.copyto(buf[: len(c)], c, casting="unsafe")
        np.matmul(buf[: len(c)], w32, out=v[s : s + len(c)])
    v += np.float32(0.5)
    k = shape[-1] + 1
    gamma = k * 2.0**-24 / (1 - k * 2.0**-24)
    eps = gamma * (255.0 * float(np.abs(w32).sum(0).max()) + 0.5) + 2.0**-16
    fl = np.floor(v)
    frac = v - fl
    r, c = np.nonzero((frac < eps) | (frac > 1.0 - eps))
    if len(r):
        exact = np.einsum("ij,ji->i", x[r].astype(np.float64), weights[:, c]) + float(1 << (PRECISION_BITS - 1))
        fl[r, c] = np.floor(exact * (1.0 / (1 << PRECISION_BITS)))
    return np.clip(fl, 0.0, 255.0).reshape(*shape[:-1], weights.shape[1])


def lanczos_resize(patches: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [N, H, W] → uint8 [N, height, width]; equals PIL `resize((width, height), LANCZOS)` per patch."""
    x = patches
    if patches.shape[2] != width:
        x = _fixed_point_pass(x, _pil_weights(patches.shape[2], width))  # [N, H, width]
    if patches.shape[1] != height:
        x = np.swapaxes(_fixed_point_pass(np.swapaxes(x, 1, 2), _pil_weights(patches.shape[1], height)), 1, 2)
    return np.asarray(x).astype(np.uint8)


def dhash64(patches: np.ndarray, batch: int = 1024) -> np.ndarray:
    """64-bit dHash of each uint8 patch [N, H, W] → uint64 [N] (equal to imagehash.dhash, hash_size 8).

    The reference hashes each patch after resizing it to 224×224; `cut_patches` already returns 224×224
    patches, so that resize is the identity here.
    """
    patches = np.asarray(patches)
    if patches.dtype != np.uint8 or patches.ndim != 3:
        raise ValueError(f"need uint8 [N, H, W], got {patches.dtype} {patches.shape}")
    out = np.empty(len(patches), np.uint64)
    for s in range(0, len(patches), batch):
        small = lanczos_resize(patches[s : s + batch], 9, 8).astype(np.int16)  # [b, 8, 9]
        bits = small[:, :, 1:] > small[:, :, :-1]  # [b, 8, 8]
        packed = np.packbits(bits.reshape(len(bits), 64), axis=1)  # [b, 8] bytes, MSB first
        out[s : s + batch] = packed.view(">u8")[:, 0]
    return out


def dhash64_pil(patch: np.ndarray) -> int:
    """Reference: imagehash.dhash on one uint8 [H, W] patch, as an int (for tests and the naive baseline)."""
    import imagehash

    return int(str(imagehash.dhash(Image.fromarray(patch), hash_size=8)), 16)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise Hamming distance of uint64 hashes (broadcasting) → uint8."""
    return np.bitwise_count(np.bitwise_xor(a, b))
