"""Self-supervised views on the accelerator: uint8 patches in, normalised float32 views out.

Each view of each sample follows a `ViewRecipe`; its defaults are MoCoV2's augmentation as the reference applies
it (docs/method.md §2), in the reference's order:

1. RandomRotation(±180°) with p 0.5, zero fill outside the rotated image (torchvision's default fill).
2. RandomResizedCrop(size, scale 0.2–1.0, ratio 3/4–4/3) of the (rotated) frame.
3. ColorJitter(brightness 0.4, contrast 0.4) in a random order (as torchvision permutes its ops); the
   reference's saturation 0.4 and hue 0.1 are no-ops on grayscale images and are left out.
4. Gaussian blur, p 0.5, σ ~ U(0.1, 2) px; 13 taps (radius 6 = ⌈3σ_max⌉ covers ±3σ; the reference's PIL blur
   is an untruncated Gaussian of radius σ), reflect borders.
5. Horizontal and vertical flips, each p 0.5.
6. Gaussian noise, p 0.5, variance log-uniform in [1e-5, 1e-4] on [0, 1] pixels, clipped to [0, 1].
7. Normalise: (x − mean) / std.

Steps 1, 2 and 5 are composed into ONE bilinear resampling per view (flips commute exactly with the
pointwise jitter, the symmetric blur and the i.i.d. noise, so folding them into the output grid changes
nothing in distribution). The reference works on uint8 PIL images between steps; here pixels stay float32
in [0, 1] throughout. Everything is per sample (vmap over ``jax.random.split(key, B)``), pure and jittable;
with the batch sharded, each device augments its own samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from cemjax.data import geometry as G

BLUR_RADIUS = 6


@dataclass(frozen=True)
class ViewRecipe:
    """The random augmentation of one view (hashable: static under jit). Defaults: MoCoV2's recipe."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotation_deg: float = 180.0
    p_rotate: float = 0.5
    jitter: float = 0.4  # brightness and contrast factors ~ U(1 − jitter, 1 + jitter)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    p_blur: float = 0.5
    noise_var: tuple[float, float] = (1e-5, 1e-4)
    p_noise: float = 0.5
    p_flip: float = 0.5


class ViewParams(NamedTuple):
    """Random parameters of one view of one sample (leading batch axis once vmapped).

    angle: degrees, 0 when not rotated; box: (y0, x0, h, w) crop in edge coordinates of the input frame;
    flip_v / flip_h: bool; brightness / contrast: multiplicative factors; contrast_first: bool (jitter
    order); sigma: blur σ in px, 0 when not blurred; noise_std: on [0, 1] pixels, 0 when no noise.
    """

    angle: jax.Array
    box: jax.Array
    flip_v: jax.Array
    flip_h: jax.Array
    brightness: jax.Array
    contrast: jax.Array
    contrast_first: jax.Array
    sigma: jax.Array
    noise_std: jax.Array
    noise_key: jax.Array


def sample_view_params(key: jax.Array, height, width, recipe: ViewRecipe = ViewRecipe()) -> ViewParams:
    """Draw one view's parameters for a height × width input (one sample; vmap for a batch)."""
    k_uniform, k_crop, k_noise = jax.random.split(key, 3)
    r = jax.random.uniform(k_uniform, (11,))  # one draw: each random call adds compile time
    between = lambda i, lo, hi: lo + (hi - lo) * r[i]  # noqa: E731
    log_var = between(3, math.log(recipe.noise_var[0]), math.log(recipe.noise_var[1]))
    return ViewParams(
        angle=jnp.where(r[0] < recipe.p_rotate, between(1, -recipe.rotation_deg, recipe.rotation_deg), 0.0),
        box=G.sample_resized_crop(k_crop, height, width, recipe.crop_scale, recipe.crop_ratio),
        flip_v=r[4] < recipe.p_flip,
        flip_h=r[5] < recipe.p_flip,
        brightness=between(6, 1 - recipe.jitter, 1 + recipe.jitter),
        contrast=between(7, 1 - recipe.jitter, 1 + recipe.jitter),
        contrast_first=r[8] < 0.5,
        sigma=jnp.where(r[9] < recipe.p_blur, between(10, *recipe.blur_sigma), 0.0),
        noise_std=jnp.where(r[2] < recipe.p_noise, jnp.sqrt(jnp.exp(log_var)), 0.0),
        noise_key=k_noise,
    )


def _jitter(x: jax.Array, brightness, contrast, contrast_first) -> jax.Array:
    """torchvision-style brightness (x·b) and contrast (c·x + (1 − c)·mean x), each clamped to [0, 1]."""
    bright = lambda y: jnp.clip(y * brightness, 0.0, 1.0)  # noqa: E731
    contr = lambda y: jnp.clip(contrast * y + (1 - contrast) * y.mean(), 0.0, 1.0)  # noqa: E731
    return jnp.where(contrast_first, bright(contr(x)), contr(bright(x)))


def render_view(image: jax.Array, p: ViewParams, size: int = 224, valid=None) -> jax.Array:
    """One view of one image: float [H, W] in [0, 1] → float32 [size, size] in [0, 1] (not normalised).

    `valid` = (h, w), possibly traced: the image is the top-left h × w of the canvas (a patch at its true size
    in a batch of larger canvases) and is treated exactly as an h × w image — rotation about its centre with
    zero fill beyond it, the crop box (`p.box`, sampled for h × w) inside it. None: the whole canvas."""
    h, w = image.shape if valid is None else (valid[0].astype(jnp.float32), valid[1].astype(jnp.float32))
    u, v = G.output_grid(size, p.flip_v, p.flip_h)
    y, x = G.crop_to_source(u, v, p.box, size)
    y, x = G.rotate(y, x, p.angle, ((h - 1) / 2, (w - 1) / 2))
    out = G.sample_bilinear(image, y, x, fill=0.0, valid=None if valid is None else (h, w))
    out = _jitter(out, p.brightness, p.contrast, p.contrast_first)
    out = G.separable_blur(out, G.gaussian_taps(p.sigma, BLUR_RADIUS))
    out = out + p.noise_std * jax.random.normal(p.noise_key, out.shape)
    return jnp.clip(out, 0.0, 1.0)


def make_views(
    images: jax.Array, key: jax.Array, valid: jax.Array | None = None, *, sizes: tuple[int, ...],
    recipes: tuple[ViewRecipe, ...], mean: float, std: float,
) -> tuple[jax.Array, ...]:  # fmt: skip
    """Views of a batch: uint8 [B, H, W, 1] canvases → one float32 [B, sizes[v], sizes[v], 1] per view v,
    normalised. `valid` int [B, 2]: each patch's true (h, w) at its canvas's top-left (None: the whole canvas).

    View v of sample b uses key `split(split(key, B)[b], V)[v]` and `recipes[v]`: deterministic for a key, and a
    sample's views do not depend on the batch it sits in beyond its index. Call inside a jitted step (sizes,
    recipes, mean and std are static); with images sharded along B the output keeps that sharding.
    """
    b, hc, wc, _ = images.shape
    if valid is None:
        valid = jnp.broadcast_to(jnp.array([hc, wc], jnp.int32), (b, 2))

    def one(image_u8, hw, k):
        image = image_u8[..., 0].astype(jnp.float32) / 255.0
        view_keys = jax.random.split(k, len(sizes))
        return tuple(
            render_view(image, sample_view_params(view_keys[v], hw[0], hw[1], recipes[v]), sizes[v], valid=hw)
            for v in range(len(sizes))
        )

    keys = jax.random.split(key, b)
    valid = jnp.asarray(valid, jnp.int32)
    per_sample = jax.vmap(one)
    typed = jax.typeof(images).sharding
    if typed.spec and typed.spec[0] is not None:  # Explicit-mode batch sharding: augment each shard locally
        spec = jax.P(typed.spec[0])
        keys = jax.sharding.reshard(keys, jax.sharding.NamedSharding(typed.mesh, spec))
        valid = jax.sharding.reshard(valid, jax.sharding.NamedSharding(typed.mesh, spec))
        out_specs = tuple(spec for _ in sizes)
        per_sample = jax.shard_map(per_sample, mesh=typed.mesh, in_specs=(spec, spec, spec), out_specs=out_specs)
    return tuple(((v - mean) / std)[..., None].astype(jnp.float32) for v in per_sample(images, valid, keys))
