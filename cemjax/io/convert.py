"""Intensity conversion for EM arrays: any supported dtype → uint8 by a named rule, RGB → gray, streamed
statistics (docs/method.md §1.1).

Rules (`INTENSITY_RULES`; the curation CLI's `--intensity`, recorded per file in its summary):

- "auto" (default): uint8 as is; unsigned integers by their *effective* bit depth — the smallest of 8, 10, 12,
  14, 16, 32, 64 bits that holds the file's maximum (a 12-bit detector's uint16 file is scaled by 4095, not
  65535, so its tissue does not end up near black); signed integers the same when no value is negative,
  otherwise min–max over the file (signed densities, as MRC files hold); floats ×255 when they lie in [0, 1],
  otherwise min–max over the file; booleans 0/255.
- "reference": the reference's patchify scripts: value / max(dtype) × 255 in float32, truncated (uint16 ÷ 65535,
  int16 ÷ 32767 with negatives clipped to 0 — the reference refuses them —, floats taken as [0, 1]).
- "dtype": the dtype's full range (unsigned ÷ max; signed shifted by 2^(bits−1) first); floats min–max.
- "percentile": the file's 0.5th–99.5th percentiles stretched to 0–255 (estimated from a sample of its values).

Scaling always uses whole-file statistics, so the planes of one volume share one scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPPORTED_KINDS = ("u", "i", "f", "b")
INTENSITY_RULES = ("auto", "reference", "dtype", "percentile")
EFFECTIVE_BITS = (8, 10, 12, 14, 16, 32, 64)
PERCENTILES = (0.5, 99.5)
_SAMPLE = 1 << 20  # values kept per block for the percentile estimate

# ITU-R 601-2 luma, the weights PIL uses for RGB → 'L'.
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Stats:
    """Whole-array statistics gathered in one streamed pass.

    lo, hi: min and max over finite values (raw units); finite: no NaN/Inf anywhere; q_lo, q_hi: the
    `PERCENTILES` of a sample of the finite values (None when not gathered)."""

    lo: float
    hi: float
    finite: bool
    q_lo: float | None = None
    q_hi: float | None = None

    @property
    def constant(self) -> bool:
        return self.lo == self.hi


@dataclass(frozen=True)
class Scaling:
    """raw → uint8: floor((x − offset) · 255 / span), clipped to 0–255 (mode "integer": exact integer arithmetic;
    "float": float64; "reference": the reference's float32 formula; "identity": uint8 as is). `description`
    says which rule applied and why, for people."""

    rule: str
    mode: str
    offset: float
    span: float
    description: str

    def apply(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        if self.mode == "identity":
            return a.astype(np.uint8, copy=False)
        if a.dtype.kind == "b":
            return a.astype(np.uint8) * np.uint8(255)
        if self.mode == "reference":
            scaled = a.astype(np.float32) / np.float32(self.span) * np.float32(255)
            return np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype(np.uint8)
        if self.mode == "integer":
            if a.dtype.itemsize == 8:  # the products below would overflow int64: go through floats
                scaled = (a.astype(np.float64) - self.offset) * 255.0 / self.span
                return np.clip(np.floor(scaled), 0, 255).astype(np.uint8)
            shifted = a.astype(np.int64) - np.int64(self.offset)
            return np.clip(shifted * 255 // np.int64(self.span), 0, 255).astype(np.uint8)
        scaled = (a.astype(np.float64) - self.offset) * 255.0 / self.span if self.span > 0 else np.zeros(a.shape)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        return np.clip(np.floor(scaled), 0, 255).astype(np.uint8)


def check_dtype(dtype: np.dtype) -> None:
    """Raise ValueError for dtypes that have no uint8 conversion (complex, object, strings, …)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in SUPPORTED_KINDS or dtype.itemsize > 8:
        raise ValueError(f"unsupported dtype {dtype}")


def check_rule(rule: str) -> None:
    if rule not in INTENSITY_RULES:
        raise ValueError(f"intensity rule {rule!r}: use one of {', '.join(INTENSITY_RULES)}")


def effective_bits(maximum: float) -> int:
    """The smallest of `EFFECTIVE_BITS` whose unsigned range holds `maximum`."""
    return next(b for b in EFFECTIVE_BITS if maximum < 2.0**b)


def _min_max(stats: Stats, rule: str, what: str) -> Scaling:
    return Scaling(rule, "float", stats.lo, stats.hi - stats.lo, f"{what}: min–max over the file ({stats.lo:g} … "
                   f"{stats.hi:g})")  # fmt: skip


def choose_scaling(dtype: np.dtype, stats: Stats, rule: str = "auto") -> Scaling:
    """The Scaling `rule` gives an array of `dtype` with whole-file `stats` (see the module docstring)."""
    check_rule(rule)
    dtype = np.dtype(dtype)
    check_dtype(dtype)
    name = str(dtype)
    if dtype == np.uint8 and rule != "percentile":
        return Scaling(rule, "identity", 0.0, 255.0, "uint8: as stored")
    if dtype.kind == "b":
        return Scaling(rule, "integer", 0.0, 1.0, "bool: 0 / 255")
    if rule == "percentile":
        lo, hi = (stats.q_lo, stats.q_hi) if stats.q_lo is not None else (stats.lo, stats.hi)
        lo, hi = (stats.lo, stats.hi) if not hi > lo else (lo, hi)
        return Scaling(rule, "float", lo, hi - lo, f"{name}: percentiles {PERCENTILES[0]}–{PERCENTILES[1]} "
                       f"({lo:g} … {hi:g}) stretched")  # fmt: skip
    if rule == "reference":
        top = 1.0 if dtype.kind == "f" else float(np.iinfo(dtype).max)
        return Scaling(rule, "reference", 0.0, top, f"{name}: the reference's ÷ {top:g} × 255 (float32, truncated)")
    if rule == "dtype":
        if dtype.kind == "f":
            return _min_max(stats, rule, name)
        info = np.iinfo(dtype)
        return Scaling(rule, "integer", float(info.min), float(info.max) - float(info.min),
                       f"{name}: its full range {info.min} … {info.max}")  # fmt: skip
    # auto
    if dtype.kind == "f":
        if stats.lo >= 0.0 and stats.hi <= 1.0:
            return Scaling(rule, "float", 0.0, 1.0, f"{name} in [0, 1]: × 255")
        return _min_max(stats, rule, f"{name} outside [0, 1]")
    if dtype.kind == "i" and stats.lo < 0:
        return _min_max(stats, rule, f"{name} with negative values (signed densities)")
    width = dtype.itemsize * 8 - (dtype.kind == "i")  # value bits of the type (signed: no sign bit)
    bits = min(effective_bits(stats.hi), width)
    note = "" if bits == width else f" holding {bits}-bit values"
    return Scaling(rule, "integer", 0.0, float(2**bits - 1), f"{name}{note}: ÷ {2**bits - 1} × 255")


def rgb_to_gray(a: np.ndarray) -> np.ndarray:
    """[..., 3 or 4] RGB(A) → [...] gray with PIL's luma weights; alpha is dropped. Keeps integer dtypes."""
    gray = a[..., :3].astype(np.float64) @ _LUMA
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(np.rint(gray), np.iinfo(a.dtype).min, np.iinfo(a.dtype).max).astype(a.dtype)
    return gray.astype(a.dtype)


def to_uint8(a: np.ndarray, stats: Stats | None = None, rule: str = "auto") -> np.ndarray:
    """Any supported array → uint8 of the same shape by `rule`, with whole-file `stats` (default: the array's
    own). Non-finite floats map to 0 (curation rejects files holding them)."""
    a = np.asarray(a)
    check_dtype(a.dtype)
    return choose_scaling(a.dtype, stats if stats is not None else scan_stats([a]), rule).apply(a)


def _sample(block: np.ndarray) -> np.ndarray:
    flat = block.reshape(-1)
    return flat[:: max(1, flat.size // _SAMPLE)].astype(np.float64)


def scan_stats(blocks) -> Stats:
    """Reduce an iterable of numpy blocks (e.g. z-slabs of a volume) to `Stats` without holding them all; the
    percentiles come from a strided sample of every block."""
    lo, hi, finite, seen, samples = np.inf, -np.inf, True, False, []
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
        samples.append(_sample(block))
    if not seen:
        return Stats(0.0, 0.0, finite)
    q_lo, q_hi = (float(q) for q in np.percentile(np.concatenate(samples), PERCENTILES))
    return Stats(lo, hi, finite, q_lo, q_hi)
