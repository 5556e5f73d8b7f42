"""Intensity conversion for EM arrays: any supported dtype → uint8, RGB → gray, streamed statistics.

docs/method.md §1.1: unsigned ints are scaled by their dtype's full range, signed ints are shifted by 2^(bits−1)
first, floats are min–max scaled. The reference derived the range from one character of the dtype's name,
which mis-scales uint16; here the true range (`np.iinfo`) is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPPORTED_KINDS = ("u", "i", "f", "b")

# ITU-R 601-2 luma, the weights PIL uses for RGB → 'L'.
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Stats:
    """Whole-array statistics gathered in one streamed pass.

    lo, hi: min and max over finite values (raw units); finite: no NaN/Inf anywhere; constant: lo == hi.
    """

    lo: float
    hi: float
    finite: bool

    @property
    def constant(self) -> bool:
        return self.lo == self.hi


def check_dtype(dtype: np.dtype) -> None:
    """Raise ValueError for dtypes that have no uint8 conversion (complex, object, strings, …)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in SUPPORTED_KINDS or dtype.itemsize > 8:
        raise ValueError(f"unsupported dtype {dtype}")


def rgb_to_gray(a: np.ndarray) -> np.ndarray:
    """[..., 3 or 4] RGB(A) → [...] gray with PIL's luma weights; alpha is dropped. Keeps integer dtypes."""
    gray = a[..., :3].astype(np.float64) @ _LUMA
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(np.rint(gray), np.iinfo(a.dtype).min, np.iinfo(a.dtype).max).astype(a.dtype)
    return gray.astype(a.dtype)


def to_uint8(a: np.ndarray, stats: Stats | None = None) -> np.ndarray:
    """Any supported array → uint8 of the same shape.

    Integers use the dtype's range (value × 255 // range, exact integer arithmetic); floats use `stats`
    (the whole file's finite min/max, so that slices of one volume share one scale) or the array's own
    min/max when `stats` is None. A constant float array maps to 0. Non-finite floats map to 0.
    """
    a = np.asarray(a)
    check_dtype(a.dtype)
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind == "b":
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype.kind == "u":
        top = np.iinfo(a.dtype).max
        return (a.astype(np.uint64) * np.uint64(255) // np.uint64(top)).astype(np.uint8)
    if a.dtype.kind == "i":
        info = np.iinfo(a.dtype)
        shifted = a.astype(np.int64) - np.int64(info.min)  # ≥ 0, ≤ 2^bits − 1
        if a.dtype.itemsize == 8:  # int64: the product below would overflow; go through floats
            return np.floor(shifted.astype(np.float64) * (255.0 / 2.0**64)).astype(np.uint8)
        return (shifted * 255 // (int(info.max) - int(info.min))).astype(np.uint8)
    lo, hi = (stats.lo, stats.hi) if stats is not None else _finite_minmax(a)
    if not hi > lo:
        return np.zeros(a.shape, np.uint8)
    scaled = (a.astype(np.float64) - lo) * (255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.floor(scaled), 0, 255).astype(np.uint8)


def _finite_minmax(a: np.ndarray) -> tuple[float, float]:
    fin = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if fin.size == 0:
        return 0.0, 0.0
    return float(fin.min()), float(fin.max())


def scan_stats(blocks) -> Stats:
    """Reduce an iterable of numpy blocks (e.g. z-slabs of a volume) to `Stats` without holding them all."""
    lo, hi, finite, seen = np.inf, -np.inf, True, False
    for block in blocks:
        block = np.asarray(block)
        if block.size == 0:
            continue
        if block.dtype.kind == "f":
            ok = np.isfinite(block)
            if not ok.all():
                finite = False
                block = block[ok]
                if block.size == 0:
                    continue
        seen = True
        lo = min(lo, float(block.min()))
        hi = max(hi, float(block.max()))
    if not seen:
        return Stats(0.0, 0.0, finite)
    return Stats(lo, hi, finite)
