"""MoCoV2 on-device augmentation: parameter distributions against docs/method.md §2, exact geometry, sharding."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from cemjax.common.norms import CEM500K_NORMS
from cemjax.data import augment as A
from cemjax.data.augment import ViewParams, sample_view_params
from cemjax.methods.mocov2.data import mocov2_views, mocov2_views_jit, write_mocov2_sheet

N = 4000
render_view = jax.jit(A.render_view, static_argnums=2)  # one compile per output size


def _binomial_ok(frac: float, p: float = 0.5, n: int = N) -> bool:
    return abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def params() -> ViewParams:
    keys = jax.random.split(jax.random.key(0), N)
    p = jax.jit(jax.vmap(lambda k: sample_view_params(k, 224, 224)))(keys)
    return p._replace(**{f: np.asarray(getattr(p, f)) for f in p._fields if f != "noise_key"})


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    from cemjax.synthetic import make_em_image

    return make_em_image((224, 224), 8.0, seed=3).image


def _identity(h=224, w=224, **over) -> ViewParams:
    p = dict(angle=0.0, box=jnp.array([-0.5, -0.5, h, w], jnp.float32), flip_v=False, flip_h=False,
             brightness=1.0, contrast=1.0, contrast_first=False, sigma=0.0, noise_std=0.0)  # fmt: skip
    p.update(over)
    p = {
        k: jnp.asarray(v, jnp.float32 if k not in ("flip_v", "flip_h", "contrast_first") else bool)
        for k, v in p.items()
    }
    return ViewParams(**p, noise_key=jax.random.key(0))


def test_crop_area_and_aspect(params):
    h, w = params.box[:, 2], params.box[:, 3]
    area = h * w / 224**2
    assert area.min() >= 0.2 - 1e-6 and area.max() <= 1.0 + 1e-6
    aspect = w / h
    assert aspect.min() >= 3 / 4 - 1e-5 and aspect.max() <= 4 / 3 + 1e-5
    assert params.box[:, 0].min() >= -0.5 - 1e-4 and (params.box[:, 0] + h).max() <= 223.5 + 1e-3
    assert params.box[:, 1].min() >= -0.5 - 1e-4 and (params.box[:, 1] + w).max() <= 223.5 + 1e-3
    # Attempts with w or h > 224 are rejected, so the mean is below U(0.2, 1)'s 0.6: compare with torchvision.
    torch = pytest.importorskip("torch")
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    ref = [RandomResizedCrop.get_params(torch.empty(1, 224, 224), [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(N)]
    ref_area = np.array([r[2] * r[3] for r in ref]) / 224**2
    assert area.mean() == pytest.approx(ref_area.mean(), abs=0.015)
    assert np.quantile(area, 0.9) == pytest.approx(np.quantile(ref_area, 0.9), abs=0.03)


def test_rotation_flips_jitter(params):
    rotated = params.angle != 0
    assert _binomial_ok(rotated.mean())
    assert np.abs(params.angle).max() <= 180 and params.angle[rotated].std() == pytest.approx(360 / 12**0.5, rel=0.05)
    assert _binomial_ok(params.flip_v.mean()) and _binomial_ok(params.flip_h.mean())
    for f in (params.brightness, params.contrast):
        assert f.min() >= 0.6 and f.max() <= 1.4 and f.mean() == pytest.approx(1.0, abs=0.02)
    assert _binomial_ok(params.contrast_first.mean())


def test_blur_sigma_and_noise_variance(params):
    blurred = params.sigma > 0
    assert _binomial_ok(blurred.mean())
    sig = params.sigma[blurred]
    assert sig.min() >= 0.1 and sig.max() <= 2.0 and sig.mean() == pytest.approx(1.05, abs=0.05)
    noisy = params.noise_std > 0
    assert _binomial_ok(noisy.mean())
    log_var = np.log(params.noise_std[noisy] ** 2)
    assert log_var.min() >= math.log(1e-5) - 1e-4 and log_var.max() <= math.log(1e-4) + 1e-4
    assert log_var.mean() == pytest.approx(math.log(1e-5 * 1e-4) / 2, abs=0.08)  # log-uniform: mean at midpoint
    assert not np.array_equal(noisy, blurred)  # independent draws


def test_identity_flips_crop_rotation_exact(image):
    x = jnp.asarray(image, jnp.float32) / 255
    np.testing.assert_allclose(render_view(x, _identity()), x, atol=1e-5)
    np.testing.assert_allclose(render_view(x, _identity(flip_h=True)), x[:, ::-1], atol=1e-5)
    np.testing.assert_allclose(render_view(x, _identity(flip_v=True)), x[::-1], atol=1e-5)
    quad = _identity(box=jnp.array([111.5, -0.5, 112, 112], jnp.float32))
    np.testing.assert_allclose(render_view(x, quad, size=112), x[112:, :112], atol=1e-5)
    r90 = np.asarray(render_view(x, _identity(angle=90.0)))
    assert min(np.abs(r90 - np.rot90(x, k)).max() for k in (1, 3)) < 1e-4
    r45 = np.asarray(render_view(x, _identity(angle=45.0)))
    assert r45[0, 0] == 0 and r45[-1, -1] == 0 and r45[112, 112] > 0  # zero fill in the corners


def test_photometry(image):
    x = jnp.asarray(image, jnp.float32) / 255
    sigma = 1.5
    blurred = np.asarray(render_view(x, _identity(sigma=sigma)))
    expect = ndimage.gaussian_filter(np.asarray(x), sigma, mode="mirror", truncate=A.BLUR_RADIUS / sigma)
    np.testing.assert_allclose(blurred, expect, atol=1e-4)
    flat = jnp.full((224, 224), 0.5, jnp.float32)
    noisy = np.asarray(render_view(flat, _identity(noise_std=0.01)))
    assert noisy.std() == pytest.approx(0.01, rel=0.05) and noisy.mean() == pytest.approx(0.5, abs=1e-3)
    bright = np.asarray(render_view(x, _identity(brightness=1.3)))
    np.testing.assert_allclose(bright, np.clip(np.asarray(x) * 1.3, 0, 1), atol=1e-5)
    low = np.asarray(render_view(x, _identity(contrast=0.6)))
    assert low.std() == pytest.approx(0.6 * float(x.std()), rel=1e-3)


def test_views_shapes_determinism_and_sheet(image, tmp_path):
    batch = jnp.asarray(np.stack([image, image[::-1], image.T, image[:, ::-1]])[..., None])
    f = mocov2_views_jit
    q1, k1 = f(batch, jax.random.key(7))
    q2, k2 = f(batch, jax.random.key(7))
    q3, _ = f(batch, jax.random.key(8))
    assert q1.shape == k1.shape == (4, 224, 224, 1) and q1.dtype == jnp.float32
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(k1, k2)
    assert not np.allclose(q1, q3) and not np.allclose(q1, k1)
    assert np.isfinite(q1).all()
    raw = (np.asarray(q1)[..., 0] * CEM500K_NORMS[1] + CEM500K_NORMS[0]).clip(0, 1)
    assert raw.min() >= 0 and raw.max() <= 1
    path = write_mocov2_sheet(tmp_path / "views.png", [image[..., None], image[:, :138, None]], n_views=2, seed=7)
    from PIL import Image

    assert Image.open(path).size[0] == 3 * (112 + 4) + 4


SMALL = 48
views_small = jax.jit(lambda x, key, valid=None: mocov2_views(x, key, valid, size=SMALL))
VALID = np.array([[64, 64], [64, 40], [33, 64], [50, 50], [64, 64], [20, 64], [64, 17], [40, 40]], np.int32)


@pytest.fixture(scope="module")
def small_batch(image):
    """8 canvases of 64² holding patches of the sizes VALID, and their views on one device."""
    batch = np.stack([np.roll(image, 9 * i, axis=1)[:64, :64] for i in range(8)])[..., None]
    return batch, [np.asarray(v) for v in views_small(jnp.asarray(batch), jax.random.key(3), VALID)]


@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
def test_sharded_batch_matches_single_device(small_batch, axis_type):
    devices = jax.devices()
    if len(devices) < 4:
        pytest.skip("needs ≥ 4 devices (XLA_FLAGS=--xla_force_host_platform_device_count)")
    kind = getattr(jax.sharding.AxisType, axis_type)
    mesh = jax.make_mesh((4,), ("data",), devices=devices[:4], axis_types=(kind,))
    batch, (q0, k0) = small_batch
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    q, k = views_small(jax.device_put(batch, sharding), jax.random.key(3), jax.device_put(VALID, sharding))
    assert q.sharding.is_equivalent_to(sharding, 4) and k.sharding.is_equivalent_to(sharding, 4)
    np.testing.assert_allclose(np.asarray(q), q0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(k), k0, atol=1e-5)


# --- patches at their true size (edge patches of the release are 224 × 138, 224 × 200, …) ---------------------


def test_crop_boxes_on_a_non_square_patch_follow_torchvision():
    """RandomResizedCrop sampled inside a 224 × 138 patch: box sizes and positions distributed as
    torchvision's `RandomResizedCrop.get_params` on that PIL image (quantiles within 3 px; ours is continuous,
    torchvision's integer)."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    from cemjax.data.geometry import sample_resized_crop

    h, w, n = 224, 138, 4000
    recipe = A.ViewRecipe()
    keys = jax.random.split(jax.random.key(1), n)
    ours = np.asarray(jax.jit(jax.vmap(lambda k: sample_resized_crop(k, h, w, recipe.crop_scale,
                                                                     recipe.crop_ratio)))(keys))  # fmt: skip
    ours = np.stack([ours[:, 0] + 0.5, ours[:, 1] + 0.5, ours[:, 2], ours[:, 3]], 1)  # (top, left, h, w) in px
    torch.manual_seed(0)
    image = Image.fromarray(np.zeros((h, w), np.uint8))
    theirs = np.array([T.RandomResizedCrop.get_params(image, list(recipe.crop_scale), list(recipe.crop_ratio))
                       for _ in range(n)], np.float64)  # fmt: skip
    assert (ours[:, 2] <= h + 1e-3).all() and (ours[:, 3] <= w + 1e-3).all()
    assert (ours[:, 0] >= -1e-3).all() and (ours[:, 0] + ours[:, 2] <= h + 1e-3).all()
    qs = np.linspace(0.05, 0.95, 19)
    for column in range(4):
        np.testing.assert_allclose(np.quantile(ours[:, column], qs), np.quantile(theirs[:, column], qs), atol=3.0)


def test_a_patch_on_a_canvas_is_treated_as_its_true_size():
    """A 224 × 138 patch on a 224 × 224 canvas (whatever lies beyond it) gives exactly the views of the bare
    224 × 138 image: rotation about its own centre with zero fill, crops sampled inside it."""
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 256, (224, 138), dtype=np.uint8)
    bare = jnp.asarray(np.repeat(patch[None, ..., None], 8, 0))
    canvas = np.full((8, 224, 224, 1), 255, np.uint8)  # garbage beyond the patch must never show
    canvas[:, :, :138, 0] = patch
    valid = np.tile(np.array([[224, 138]], np.int32), (8, 1))
    views = jax.jit(lambda x, key, v: mocov2_views(x, key, v, size=SMALL))
    for got, want in zip(views(jnp.asarray(canvas), jax.random.key(5), valid), views(bare, jax.random.key(5), None),
                         strict=True):  # fmt: skip
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-4)  # normalised units (÷ std 0.1)
