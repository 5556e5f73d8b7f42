"""Fine-tuning augmentation on the accelerator (docs/method.md §4): image and mask together, per-sample keys.

The reference's albumentations pipeline, step by step (probabilities are albumentations' defaults):

1. PadIfNeeded(size): pad the image (h × w) to at least size × size, centred, reflect-101 borders (mask too).
2. CropNonEmptyMaskIfExists(size), p 0.8 — flag ``nonempty`` (CREMI, Kasthuri++): a size × size window
   holding a random foreground pixel of the mask (any window if the mask is empty).
3. RandomResizedCrop(size, scale 0.08–1, ratio 0.5–1.5) of that frame; bilinear image, nearest mask.
4. Rotate(±180°), p 0.5, about the crop's centre, reflect-101 borders.
5. RandomBrightnessContrast(0.3, 0.3), p 0.5: x ← clip(α·x + β), α ~ U(0.7, 1.3), β ~ U(−0.3, 0.3) on [0, 1].
6. flag ``noise_blur`` (All Mito, Guay): GaussNoise, p 0.5, variance ~ U(400, 1200) on 0–255 pixels; then
   GaussianBlur, p 0.5, kernel 3, 5 or 7 px with OpenCV's σ = 0.3·((k − 1)/2 − 1) + 0.8, reflect-101.
7. HorizontalFlip and VerticalFlip, each p 0.5.

Steps 1–4 and 7 are one map from output pixels to source pixels (flips commute with the pointwise, symmetric
or i.i.d. photometry), so the image is interpolated once (bilinear) and the mask sampled once (nearest, so its
values stay in the class set). Photometry touches the image only. Differences from the reference: pixels stay
float in [0, 1] between steps (no uint8 rounding); step 2 picks its foreground pixel in the unpadded mask.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cemjax.data import geometry as G

CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (0.5, 1.5)
ROTATION_DEG = 180.0
BRIGHTNESS = CONTRAST = 0.3
NOISE_VAR = (400.0, 1200.0)  # on 0–255 pixels
BLUR_KSIZES = (3, 5, 7)
P_ROTATE = P_JITTER = P_NOISE = P_BLUR = P_FLIP = 0.5
P_NONEMPTY = 0.8


def opencv_sigma(ksize):
    """σ (px) OpenCV derives from a Gaussian kernel size when given σ = 0."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


class SegParams(NamedTuple):
    """Random parameters of one sample (leading batch axis once vmapped).

    offset: (y, x) float32 [2], the frame's top-left in padded coordinates (nonzero after step 2); box:
    (y0, x0, h, w) RandomResizedCrop in frame edge coordinates; angle: degrees (0: not rotated); flip_v /
    flip_h: bool; alpha / beta: contrast factor and brightness shift on [0, 1] pixels (1, 0: off);
    noise_std: on [0, 1] pixels (0: off); ksize: blur kernel size in px (0: off).
    """

    offset: jax.Array
    box: jax.Array
    angle: jax.Array
    flip_v: jax.Array
    flip_h: jax.Array
    alpha: jax.Array
    beta: jax.Array
    noise_std: jax.Array
    ksize: jax.Array
    noise_key: jax.Array


def _padded(valid, size: int):
    """Padded frame size (≥ size) and the image's offset in it, for valid = (h, w)."""
    h, w = valid[0].astype(jnp.float32), valid[1].astype(jnp.float32)
    hp, wp = jnp.maximum(h, size), jnp.maximum(w, size)
    return h, w, hp, wp, jnp.floor((hp - h) / 2), jnp.floor((wp - w) / 2)


def _nonempty_offset(key, mask, valid, size: int):
    """Top-left (y, x) of a size × size window over the padded frame holding a random foreground pixel."""
    h, w, hp, wp, top, left = _padded(valid, size)
    k_pick, k_shift = jax.random.split(key)
    rows = jnp.arange(mask.shape[0])[:, None] < valid[0]
    cols = jnp.arange(mask.shape[1])[None, :] < valid[1]
    fg = (mask > 0) & rows & cols
    pick = jnp.argmax(jnp.where(fg, jax.random.uniform(k_pick, mask.shape), -1.0))
    y, x = (pick // mask.shape[1]).astype(jnp.float32) + top, (pick % mask.shape[1]).astype(jnp.float32) + left
    r = jax.random.uniform(k_shift, (4,))
    y0 = jnp.clip(y - jnp.floor(r[0] * size), 0, hp - size)
    x0 = jnp.clip(x - jnp.floor(r[1] * size), 0, wp - size)
    y_any, x_any = jnp.floor(r[2] * (hp - size + 1)), jnp.floor(r[3] * (wp - size + 1))
    has = fg.any()
    return jnp.stack([jnp.where(has, y0, y_any), jnp.where(has, x0, x_any)])


def sample_seg_params(key, mask, valid, size: int, noise_blur: bool = False, nonempty: bool = False) -> SegParams:
    """Draw one sample's parameters. mask: uint8 [Hc, Wc] canvas whose top-left valid = (h, w) int holds the
    image; size: output side in px; flags as in the module docstring (static)."""
    k_uniform, k_crop, k_nonempty, k_noise = jax.random.split(key, 4)
    r = jax.random.uniform(k_uniform, (13,))
    between = lambda i, lo, hi: lo + (hi - lo) * r[i]  # noqa: E731
    _, _, hp, wp, _, _ = _padded(valid, size)
    offset = jnp.zeros(2, jnp.float32)
    frame = (hp, wp)
    if nonempty:
        cropped = r[0] < P_NONEMPTY
        offset = jnp.where(cropped, _nonempty_offset(k_nonempty, mask, valid, size), offset)
        frame = (jnp.where(cropped, size, hp), jnp.where(cropped, size, wp))
    jitter = r[4] < P_JITTER
    noise_std = jnp.sqrt(between(8, *NOISE_VAR)) / 255.0
    ksize = jnp.asarray(BLUR_KSIZES, jnp.float32)[jnp.minimum((r[10] * len(BLUR_KSIZES)).astype(jnp.int32), 2)]
    return SegParams(
        offset=offset,
        box=G.sample_resized_crop(k_crop, frame[0], frame[1], CROP_SCALE, CROP_RATIO),
        angle=jnp.where(r[1] < P_ROTATE, between(2, -ROTATION_DEG, ROTATION_DEG), 0.0),
        flip_v=r[3] < P_FLIP,
        flip_h=r[11] < P_FLIP,
        alpha=jnp.where(jitter, between(5, 1 - CONTRAST, 1 + CONTRAST), 1.0),
        beta=jnp.where(jitter, between(6, -BRIGHTNESS, BRIGHTNESS), 0.0),
        noise_std=jnp.where(noise_blur & (r[7] < P_NOISE), noise_std, 0.0),
        ksize=jnp.where(noise_blur & (r[9] < P_BLUR), ksize, 0.0),
        noise_key=k_noise,
    )


def source_coords(valid, p: SegParams, size: int):
    """Source pixel coordinates (y, x) float32 [size, size] inside the valid image for every output pixel."""
    h, w, _, _, top, left = _padded(valid, size)
    u, v = G.output_grid(size, p.flip_v, p.flip_h)
    centre = (size - 1) / 2
    a, b = G.rotate(u, v, p.angle, (centre, centre))
    a, b = G.reflect101(a, size), G.reflect101(b, size)  # rotation border of the resized crop
    y, x = G.crop_to_source(a, b, p.box, size)
    y, x = y + p.offset[0] - top, x + p.offset[1] - left
    return G.reflect101(y, h), G.reflect101(x, w)  # PadIfNeeded's reflect-101 border


def blur_taps(ksize) -> jax.Array:
    """OpenCV's Gaussian kernel of size ksize (0: identity) as float32 [7] taps centred on index 3."""
    radius = (ksize - 1) / 2
    k = jnp.arange(-3, 4, dtype=jnp.float32)
    taps = jnp.where(jnp.abs(k) <= radius, jnp.exp(-0.5 * (k / opencv_sigma(jnp.maximum(ksize, 3))) ** 2), 0.0)
    return jnp.where(ksize > 0, taps / taps.sum(), (k == 0).astype(jnp.float32))


def render(image, mask, valid, p: SegParams, size: int) -> tuple[jax.Array, jax.Array]:
    """One sample: float image [Hc, Wc] in [0, 1] and uint8 mask [Hc, Wc] → (float32 [size, size] in [0, 1],
    uint8 [size, size])."""
    y, x = source_coords(valid, p, size)
    out = G.sample_bilinear(image, y, x, fill=None)
    out_mask = G.sample_nearest(mask, y, x)
    out = jnp.clip(p.alpha * out + p.beta, 0.0, 1.0)
    out = jnp.clip(out + p.noise_std * jax.random.normal(p.noise_key, out.shape), 0.0, 1.0)
    out = G.separable_blur(out, blur_taps(p.ksize))
    return out, out_mask


def seg_augment(
    images, masks, key, valid=None, *, size: int, noise_blur: bool = False, nonempty: bool = False,
    mean: float = 0.0, std: float = 1.0,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Augment a batch: images, masks uint8 [B, Hc, Wc, 1] (valid int [B, 2] = (h, w) of each image at the
    canvas's top-left; None: the whole canvas) → (float32 [B, size, size, 1] normalised (x − mean)/std, uint8
    [B, size, size, 1]). Per-sample keys from ``jax.random.split(key, B)``: deterministic for a key. Jit it
    with size/noise_blur/nonempty/mean/std static (``seg_augment_jit``)."""
    b, hc, wc, _ = images.shape
    if valid is None:
        valid = jnp.broadcast_to(jnp.array([hc, wc], jnp.int32), (b, 2))

    def one(image, mask, v, k):
        p = sample_seg_params(k, mask[..., 0], v, size, noise_blur, nonempty)
        return render(image[..., 0].astype(jnp.float32) / 255.0, mask[..., 0], v, p, size)

    out, out_mask = jax.vmap(one)(images, masks, jnp.asarray(valid, jnp.int32), jax.random.split(key, b))
    return ((out - mean) / std)[..., None].astype(jnp.float32), out_mask[..., None]


seg_augment_jit = jax.jit(seg_augment, static_argnames=("size", "noise_blur", "nonempty", "mean", "std"))
