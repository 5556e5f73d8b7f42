"""Per-sample geometry for on-device augmentation: random resized crops, rotations, flips, one resampling.

All functions act on ONE sample (vmap them over a batch). Coordinates are in pixels, pixel centres at
integers: an image [H, W] spans the edges [-0.5, H - 0.5] × [-0.5, W - 0.5]. A crop box (y0, x0, h, w) is in
edge coordinates (its top-left edge at (y0, x0), h × w pixels, continuous — no rounding to whole pixels, since
the crop is resampled anyway). Geometry that the reference applies in several interpolating steps
(rotate, then crop-and-resize, then flip) is composed here into a single map from output pixels to source
coordinates, so each output is interpolated once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def sample_resized_crop(
    key: jax.Array, height, width, scale: tuple[float, float], ratio: tuple[float, float], attempts: int = 10
) -> jax.Array:
    """torchvision RandomResizedCrop's box sampling, vectorised over its 10 attempts.

    Area fraction ~ U(scale), log aspect (w / h) ~ U(log ratio); the first attempt that fits inside
    height × width wins, its top-left uniform over the free range. If none fits: the whole image with its
    aspect clamped to ``ratio`` and centred (torchvision's fallback). height/width may be traced (valid size
    of a padded canvas). Returns float32 [4] = (y0, x0, h, w) in edge coordinates.
    """
    r = jax.random.uniform(key, (2 * attempts + 2,))  # one draw (each random call costs compile time)
    height = jnp.asarray(height, jnp.float32)
    width = jnp.asarray(width, jnp.float32)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * r[:attempts])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    log_r = log_lo + (log_hi - log_lo) * r[attempts : 2 * attempts]
    aspect = jnp.exp(log_r)
    w = jnp.sqrt(area * aspect)
    h = jnp.sqrt(area / aspect)
    fits = (w <= width) & (h <= height)
    first = jnp.argmax(fits)
    in_ratio = width / height
    fb_w = jnp.where(in_ratio > ratio[1], height * ratio[1], width)
    fb_h = jnp.where(in_ratio < ratio[0], width / ratio[0], height)
    h = jnp.where(fits.any(), h[first], jnp.minimum(fb_h, height))
    w = jnp.where(fits.any(), w[first], jnp.minimum(fb_w, width))
    y0 = jnp.where(fits.any(), r[-2] * (height - h), (height - h) / 2)
    x0 = jnp.where(fits.any(), r[-1] * (width - w), (width - w) / 2)
    return jnp.stack([y0, x0, h, w]).astype(jnp.float32) - jnp.array([0.5, 0.5, 0.0, 0.0], jnp.float32)


def output_grid(size: int, flip_v, flip_h) -> tuple[jax.Array, jax.Array]:
    """Pixel-centre coordinates (u, v) float32 [size, size] of the output, mirrored where flipped."""
    r = jnp.arange(size, dtype=jnp.float32)
    u, v = jnp.meshgrid(r, r, indexing="ij")
    u = jnp.where(flip_v, size - 1 - u, u)
    v = jnp.where(flip_h, size - 1 - v, v)
    return u, v


def crop_to_source(u, v, box: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """Map output pixel centres (size × size) into the crop box (y0, x0, h, w) of the source frame."""
    y = box[0] + (u + 0.5) * (box[2] / size)
    x = box[1] + (v + 0.5) * (box[3] / size)
    return y, x


def rotate(y, x, angle_deg, centre: tuple) -> tuple[jax.Array, jax.Array]:
    """Rotate coordinates by ``angle_deg`` about ``centre`` (an image rotated by −angle samples here)."""
    a = jnp.deg2rad(angle_deg)
    c, s = jnp.cos(a), jnp.sin(a)
    dy, dx = y - centre[0], x - centre[1]
    return centre[0] + c * dy - s * dx, centre[1] + s * dy + c * dx


def reflect101(t, n):
    """Fold coordinates into [0, n − 1] by mirror reflection about the edge pixel centres (OpenCV REFLECT_101)."""
    period = 2.0 * jnp.maximum(n - 1.0, 1e-6)
    t = jnp.mod(jnp.abs(t), period)
    return jnp.where(t > n - 1.0, period - t, t)


def sample_bilinear(image: jax.Array, y, x, fill: float | None = 0.0, valid=None) -> jax.Array:
    """Bilinear lookup of float image [H, W] at (y, x) [...]. fill=None clamps to the edge; else corners
    outside the image contribute ``fill``. ``valid`` = (h, w) (may be traced): the image is the top-left h × w
    of the canvas and everything beyond it counts as outside. Returns float32 of y's shape."""
    hc, wc = image.shape
    h, w = (hc, wc) if valid is None else valid
    if valid is not None and fill is None:
        raise ValueError("sample_bilinear: valid= needs a fill value")
    y0, x0 = jnp.floor(y), jnp.floor(x)
    dy, dx = y - y0, x - x0
    flat = image.reshape(-1)
    out = 0.0
    for oy, ox, wt in ((0, 0, (1 - dy) * (1 - dx)), (0, 1, (1 - dy) * dx), (1, 0, dy * (1 - dx)), (1, 1, dy * dx)):
        yi, xi = (y0 + oy).astype(jnp.int32), (x0 + ox).astype(jnp.int32)
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        val = jnp.take(flat, jnp.clip(yi, 0, hc - 1) * wc + jnp.clip(xi, 0, wc - 1))
        if fill is not None:
            val = jnp.where(inside, val, fill)
        out = out + wt * val
    return out


def sample_nearest(image: jax.Array, y, x) -> jax.Array:
    """Nearest-neighbour lookup of image [H, W] (any dtype) at (y, x), clamped to the edge."""
    h, w = image.shape
    yi = jnp.clip(jnp.round(y).astype(jnp.int32), 0, h - 1)
    xi = jnp.clip(jnp.round(x).astype(jnp.int32), 0, w - 1)
    return jnp.take(image.reshape(-1), yi * w + xi)


def gaussian_taps(sigma, radius: int) -> jax.Array:
    """Normalised 1D Gaussian weights float32 [2·radius + 1]; sigma ≤ 0 gives the identity (a delta)."""
    k = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    s = jnp.maximum(sigma, 1e-3)
    taps = jnp.exp(-0.5 * (k / s) ** 2)
    taps = taps / taps.sum()
    return jnp.where(sigma > 0, taps, (k == 0).astype(jnp.float32))


def separable_blur(image: jax.Array, taps: jax.Array) -> jax.Array:
    """Blur float image [H, W] with the same 1D taps along y then x, reflect-101 borders."""
    radius = (taps.shape[0] - 1) // 2
    h, w = image.shape
    padded = jnp.pad(image, ((radius, radius), (0, 0)), mode="reflect")
    image = sum(taps[k] * padded[k : k + h] for k in range(taps.shape[0]))
    padded = jnp.pad(image, ((0, 0), (radius, radius)), mode="reflect")
    return sum(taps[k] * padded[:, k : k + w] for k in range(taps.shape[0]))
