"""Fine-tuning augmentation: parameter distributions against docs/method.md §4, exact geometry, mask alignment."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from cemjax.data import augment_seg as S

N = 4000


def _binomial_ok(frac: float, p: float = 0.5, n: int = N) -> bool:
    return abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)


def _draw(n, mask, valid, size, noise_blur, nonempty, seed=0):
    f = jax.jit(jax.vmap(lambda k, m: S.sample_seg_params(k, m, valid, size, noise_blur, nonempty)))
    p = f(jax.random.split(jax.random.key(seed), n), mask)
    return p._replace(**{k: np.asarray(getattr(p, k)) for k in p._fields if k != "noise_key"})


@pytest.fixture(scope="module")
def params():
    return _draw(N, jnp.zeros((N, 4, 4), jnp.uint8), jnp.array([300, 400]), 256, True, False)


def test_crop_rotation_flips(params):
    frame = 300 * 400  # padded frame = the image (both sides ≥ 256)
    h, w = params.box[:, 2], params.box[:, 3]
    area = h * w / frame
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert (w / h).min() >= 0.5 - 1e-5 and (w / h).max() <= 1.5 + 1e-5
    assert params.box[:, 0].min() >= -0.5 - 1e-3 and (params.box[:, 0] + h).max() <= 299.5 + 1e-3
    assert params.box[:, 1].min() >= -0.5 - 1e-3 and (params.box[:, 1] + w).max() <= 399.5 + 1e-3
    assert not params.offset.any()
    torch = pytest.importorskip("torch")
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    ref = [RandomResizedCrop.get_params(torch.empty(1, 300, 400), [0.08, 1.0], [0.5, 1.5]) for _ in range(N)]
    ref_area = np.array([r[2] * r[3] for r in ref]) / frame
    assert area.mean() == pytest.approx(ref_area.mean(), abs=0.015)
    rotated = params.angle != 0
    assert _binomial_ok(rotated.mean())
    assert np.abs(params.angle).max() <= 180 and params.angle[rotated].std() == pytest.approx(360 / 12**0.5, rel=0.05)
    assert _binomial_ok(params.flip_v.mean()) and _binomial_ok(params.flip_h.mean())
    assert not np.array_equal(params.flip_v, params.flip_h)


def test_photometry_parameters(params):
    on = params.alpha != 1
    assert _binomial_ok(on.mean()) and np.array_equal(on, params.beta != 0)
    assert (
        params.alpha.min() >= 0.7
        and params.alpha.max() <= 1.3
        and params.alpha[on].mean() == pytest.approx(1, abs=0.01)
    )
    assert (
        params.beta.min() >= -0.3 and params.beta.max() <= 0.3 and params.beta[on].mean() == pytest.approx(0, abs=0.01)
    )
    noisy = params.noise_std > 0
    var = (params.noise_std[noisy] * 255) ** 2
    assert _binomial_ok(noisy.mean()) and var.min() >= 400 - 1e-2 and var.max() <= 1200 + 1e-2
    assert var.mean() == pytest.approx(800, rel=0.03)
    blurred = params.ksize > 0
    assert _binomial_ok(blurred.mean()) and not np.array_equal(blurred, noisy)
    for k in (3, 5, 7):
        assert _binomial_ok((params.ksize[blurred] == k).mean(), 1 / 3, int(blurred.sum()))
    taps = np.asarray(S.blur_taps(jnp.float32(5)))  # cv2.getGaussianKernel(5, 0): σ = 1.1, 5 taps
    expect = np.exp(-0.5 * (np.arange(-2, 3) / 1.1) ** 2)
    np.testing.assert_allclose(taps, np.r_[0, expect / expect.sum(), 0], atol=1e-6)


def test_crop_non_empty_mask():
    mask = np.zeros((2, 150, 200), np.uint8)
    mask[0, 120, 170] = 1  # one foreground pixel; sample 1's mask is empty
    masks = jnp.asarray(np.tile(mask, (1000, 1, 1)))  # samples alternate: even → one pixel, odd → empty
    p = _draw(2000, masks, jnp.array([150, 200]), 64, False, True, seed=1)
    fg, empty = p.offset[0::2], p.offset[1::2]
    cropped = fg.any(axis=1)  # a window holding (120, 170) cannot start at 0
    assert _binomial_ok(cropped.mean(), 0.8, 1000)
    y0, x0 = fg[cropped, 0], fg[cropped, 1]
    assert (y0 <= 120).all() and (y0 + 64 > 120).all() and (x0 <= 170).all() and (x0 + 64 > 170).all()
    assert y0.max() <= 150 - 64 and x0.max() <= 200 - 64 and len(np.unique(x0)) > 20
    box_fg = p.box[0::2][cropped]
    assert (box_fg[:, 2] * box_fg[:, 3]).max() <= 64**2 * (1 + 1e-5)  # RandomResizedCrop inside the window
    assert empty[:, 0].max() <= 86 and empty[:, 1].max() <= 136 and empty[:, 1].mean() > 30  # anywhere


render_b = jax.jit(jax.vmap(S.render, in_axes=(0, 0, 0, 0, None)), static_argnums=4)


def _identity(b, size, **over):
    p = dict(offset=jnp.zeros((b, 2)), box=jnp.tile(jnp.array([-0.5, -0.5, size, size]), (b, 1)),
             angle=jnp.zeros(b), flip_v=jnp.zeros(b, bool), flip_h=jnp.zeros(b, bool), alpha=jnp.ones(b),
             beta=jnp.zeros(b), noise_std=jnp.zeros(b), ksize=jnp.zeros(b))  # fmt: skip
    p.update(over)
    return S.SegParams(**p, noise_key=jax.random.split(jax.random.key(0), b))


def test_pad_if_needed_flips_rotation_are_exact():
    rng = np.random.default_rng(0)
    size, h, w = 48, 30, 41
    image = np.zeros((2, 48, 48), np.uint8)
    image[:, :h, :w] = rng.integers(0, 256, (2, h, w))
    mask = image // 64  # labels 0..3, a function of the image
    valid = jnp.array([[h, w], [h, w]])
    pads = (
        (math.floor((size - h) / 2), size - h - math.floor((size - h) / 2)),
        ((size - w) // 2, size - w - (size - w) // 2),
    )
    expect = np.pad(image[0, :h, :w], pads, mode="reflect")  # numpy "reflect" = OpenCV REFLECT_101
    for over, view in (({}, lambda a: a), ({"flip_h": jnp.ones(2, bool)}, lambda a: a[:, ::-1]),
                       ({"flip_v": jnp.ones(2, bool)}, lambda a: a[::-1])):  # fmt: skip
        out, out_mask = render_b(jnp.asarray(image) / 255.0, jnp.asarray(mask), valid, _identity(2, size, **over), size)
        np.testing.assert_allclose(np.asarray(out[0]) * 255, view(expect), atol=1e-3)
        np.testing.assert_array_equal(np.asarray(out_mask[0]), view(expect) // 64)
    out, out_mask = render_b(
        jnp.asarray(image) / 255.0, jnp.asarray(mask), valid, _identity(2, size, angle=jnp.full(2, 90.0)), size
    )
    assert min(np.abs(np.asarray(out[0]) * 255 - np.rot90(expect, k)).max() for k in (1, 3)) < 1e-3
    blurred, _ = render_b(
        jnp.asarray(image) / 255.0, jnp.asarray(mask), valid, _identity(2, size, ksize=jnp.full(2, 5.0)), size
    )
    ref = ndimage.gaussian_filter(expect / 255.0, S.opencv_sigma(5), mode="mirror", truncate=2 / S.opencv_sigma(5))
    np.testing.assert_allclose(np.asarray(blurred[0]), ref, atol=1e-5)  # σ 1.1 px, 5 taps, reflect-101


def test_masks_stay_aligned_and_in_the_class_set():
    rng = np.random.default_rng(1)
    smooth = np.stack([ndimage.gaussian_filter(rng.normal(size=(96, 96)), 5) for _ in range(8)])
    images = np.clip(128 + smooth / smooth.std() * 60, 0, 255).astype(np.uint8)
    masks = np.where(images > 128, 3, np.where(images < 60, 6, 0)).astype(np.uint8)  # classes {0, 3, 6}
    valid = np.array([[96, 96], [50, 70], [96, 40], [30, 30]] * 2, np.int32)
    for i, (h, w) in enumerate(valid):
        images[i, h:], images[i, :, w:], masks[i, h:], masks[i, :, w:] = 0, 0, 0, 0
    args = (jnp.asarray(images[..., None]), jnp.asarray(masks[..., None]), jax.random.key(5), jnp.asarray(valid))
    out, out_mask = S.seg_augment_jit(*args, size=64, nonempty=True)
    again, _ = S.seg_augment_jit(*args, size=64, nonempty=True)
    assert out.shape == out_mask.shape == (8, 64, 64, 1) and out.dtype == jnp.float32 and out_mask.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(out), np.asarray(again))
    assert set(np.unique(np.asarray(out_mask))) <= {0, 3, 6}
    out, out_mask = np.asarray(out)[..., 0], np.asarray(out_mask)[..., 0]
    for i in range(8):  # brightness/contrast is increasing, so some threshold of the image recovers class 3
        target = out_mask[i] == 3
        best = max(((out[i] > t) == target).mean() for t in np.linspace(0, 1, 101))
        assert best > 0.95, (i, best)
        if target.any() and (~target).any():
            assert out[i][target].mean() > out[i][~target].mean()
