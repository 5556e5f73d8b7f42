"""Vectorised difference hash, bit-identical to `imagehash.dhash(Image.fromarray(patch), hash_size=8)`.

imagehash converts to 'L', resizes to (hash_size + 1) × hash_size with PIL's LANCZOS filter and sets bit
(r, c) when pixel (r, c + 1) > pixel (r, c). PIL resamples separably — a horizontal pass into a uint8
intermediate, then a vertical pass — with Lanczos-3 weights rounded to 22-bit fixed point: each output is
clip8((2^21 + Σ v·k) >> 22). `_pil_weights` rebuilds those integer weights with the same double arithmetic
as Pillow's `precompute_coeffs`.

Both passes run as float32 matrix products that are exact, so no rounding case needs special treatment:
each integer weight k is split into balanced base-2^9 digits, k = 2^9·k_hi + k_lo, and the product with
each digit column stays an integer below 2^23 in every partial sum (checked from the weights: 255·Σ|digit|
< 2^23), which float32 represents exactly whatever the summation order. The fixed-point result is then
floor((S_hi + floor((S_lo + 2^21) / 2^9)) / 2^13) — every intermediate an integer below 2^24 times a power of
two, so again exact in float32 (the powers of two are folded into the digit weights). Sizes where the
bound fails fall back to one float64 product, also exact. The uint8 → float32 cast, the product and the
rounding run on cache-sized pieces of rows. One BLAS thread is fastest (OPENBLAS_NUM_THREADS=1);
`dhash64(threads=...)` splits a batch across Python threads instead (numpy releases the GIL).
`tests/test_curate_dhash.py` checks equality against imagehash itself.

Hash layout: a uint64 whose most significant bit is bit (0, 0), row-major — the same order as
`int(str(imagehash.dhash(...)), 16)`.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

PRECISION_BITS = 22
LANCZOS_SUPPORT = 3.0
DIGIT_BITS = 9
CHUNK_ROWS = 2048  # rows cast, multiplied and rounded at a time (≈ 2 MB of float32: stays in L2/L3)


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


@functools.cache
def _digit_weights(in_size: int, out_size: int) -> np.ndarray | None:
    """float32 [in_size, 2·out_size]: [k_hi / 2^13 | k_lo / 2^9] with k = 2^9·k_hi + k_lo, k_lo ∈ [−256, 256),
    or None when the digit sums could leave float32's exact integer range (255·Σ|digit| ≥ 2^23)."""
    w = _pil_weights(in_size, out_size)
    lo = w - (1 << DIGIT_BITS) * np.floor(w / (1 << DIGIT_BITS) + 0.5)
    hi = (w - lo) / (1 << DIGIT_BITS)
    if max(np.abs(hi).sum(0).max(), np.abs(lo).sum(0).max()) * 255 >= 2**23:
        return None
    shift = PRECISION_BITS - DIGIT_BITS
    return np.concatenate([hi * 2.0**-shift, lo * 2.0**-DIGIT_BITS], 1).astype(np.float32)  # exact scalings


def _fixed_point_pass(values: np.ndarray, in_size: int, out_size: int) -> np.ndarray:
    """Pillow's clip8((2^21 + Σ v·k) >> 22) with the weights `_pil_weights(in_size, out_size)` for every row of
    `values` [R, in_size] (uint8, or integer-valued float32 in 0..255) → float32 [out_size, R] (transposed, so
    that the rounding runs over contiguous memory), exact."""
    x = values
    res = np.empty((out_size, len(x)), np.float32)
    dw = _digit_weights(in_size, out_size)
    if dw is None:  # exact in float64: every partial sum is an integer below 2^53
        s = _pil_weights(in_size, out_size).T @ x.T.astype(np.float64) + float(1 << (PRECISION_BITS - 1))
        np.floor(s * 2.0**-PRECISION_BITS, out=s)
        res[:] = np.clip(s, 0.0, 255.0)
        return res
    dw_t = np.ascontiguousarray(dw.T)
    half_lo = np.float32(2.0 ** (PRECISION_BITS - 1 - DIGIT_BITS))
    inv = np.float32(2.0 ** -(PRECISION_BITS - DIGIT_BITS))
    rows = min(len(x), CHUNK_ROWS)
    buf = np.empty((rows, in_size), np.float32) if x.dtype != np.float32 else None
    prod = np.empty((2 * out_size, rows), np.float32)
    for s in range(0, len(x), CHUNK_ROWS):
        c = x[s : s + CHUNK_ROWS]
        n = len(c)
        if buf is not None:
            np.copyto(buf[:n], c, casting="unsafe")
            c = buf[:n]
        p = prod[:, :n]
        np.matmul(dw_t, c.T, out=p)
        hi, lo = p[:out_size], p[out_size:]  # S_hi / 2^13 and S_lo / 2^9, exact
        lo += half_lo
        np.floor(lo, out=lo)
        lo *= inv
        hi += lo  # exact: both have at most 13 fractional bits and |hi| < 2^10
        np.floor(hi, out=hi)
        np.maximum(hi, 0.0, out=hi)
        np.minimum(hi, 255.0, out=res[:, s : s + n])
    return res


def _resize_t(patches: np.ndarray, width: int, height: int) -> np.ndarray:
    """The resize of uint8 [N, H, W] as float32 [height, width, N] (the layout both passes produce)."""
    n, h, w = patches.shape
    if w != width:
        x = _fixed_point_pass(patches.reshape(n * h, w), w, width)  # [width, N·H]
    else:
        x = np.ascontiguousarray(patches.transpose(2, 0, 1), np.float32)
    x = x.reshape(width * n, h)  # rows: (column, patch)
    if h != height:
        return _fixed_point_pass(x, h, height).reshape(height, width, n)
    return np.ascontiguousarray(x.reshape(width, n, h).transpose(2, 0, 1))


def lanczos_resize(patches: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [N, H, W] → uint8 [N, height, width]; equals PIL `resize((width, height), LANCZOS)` per patch."""
    return _resize_t(np.asarray(patches), width, height).transpose(2, 0, 1).astype(np.uint8)


def _dhash_batch(patches: np.ndarray) -> np.ndarray:
    small = _resize_t(patches, 9, 8)  # [8 rows, 9 columns, b]
    bits = small[:, 1:] > small[:, :-1]  # [8, 8, b]
    packed = np.packbits(bits.reshape(64, -1), axis=0)  # [8, b] bytes, MSB first, row-major bit order
    return np.ascontiguousarray(packed.T).view(">u8")[:, 0].astype(np.uint64)


def dhash64(patches: np.ndarray, batch: int = 1024, threads: int = 1) -> np.ndarray:
    """64-bit dHash of each uint8 patch [N, H, W] → uint64 [N] (equal to imagehash.dhash, hash_size 8).

    The reference hashes each patch after resizing it to 224×224; `cut_patches` already returns 224×224
    patches, so that resize is the identity here. `threads` > 1 hashes pieces of each batch in parallel.
    """
    patches = np.asarray(patches)
    if patches.dtype != np.uint8 or patches.ndim != 3:
        raise ValueError(f"need uint8 [N, H, W], got {patches.dtype} {patches.shape}")
    out = np.empty(len(patches), np.uint64)
    step = batch if threads <= 1 else max(1, -(-min(batch, len(patches)) // threads))
    starts = range(0, len(patches), step)
    if threads <= 1 or len(starts) == 1:
        for s in starts:
            out[s : s + step] = _dhash_batch(patches[s : s + step])
        return out
    with ThreadPoolExecutor(threads) as pool:
        for s, h in zip(starts, pool.map(lambda s: _dhash_batch(patches[s : s + step]), starts), strict=True):
            out[s : s + step] = h
    return out


def dhash64_pil(patch: np.ndarray) -> int:
    """imagehash.dhash on one uint8 [H, W] patch as an int, for the parity tests (the benchmark's baseline is
    `dhash_bits_reference`, the reference's own steps)."""
    import imagehash  # the dev extra: only parity tests and the benchmark compare against it

    return int(str(imagehash.dhash(Image.fromarray(patch), hash_size=8)), 16)


def dhash_bits_reference(patch: np.ndarray, crop_size: int = 224) -> np.ndarray:
    """The reference's per-patch hash (cem-dataset `patchify*.py`): PIL image → resize to crop_size² with
    BILINEAR (a copy for a 224² patch) → `imagehash.dhash(...).hash`, flattened → bool [64], row-major.
    Used as the naive baseline and to check parity; `bits_to_uint64` packs it like `dhash64`."""
    import imagehash  # the dev extra: only parity tests and the benchmark compare against it

    image = Image.fromarray(patch).resize((crop_size, crop_size), resample=Image.BILINEAR)
    return imagehash.dhash(image, hash_size=8).hash.ravel()


def bits_to_uint64(bits: np.ndarray) -> np.ndarray:
    """bool [N, 64] (bit (0, 0) first) → uint64 [N] in `dhash64`'s layout (MSB = bit (0, 0))."""
    return np.packbits(np.asarray(bits, bool), axis=1).view(">u8")[:, 0].astype(np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise Hamming distance of uint64 hashes (broadcasting) → uint8."""
    return np.bitwise_count(np.bitwise_xor(a, b))
