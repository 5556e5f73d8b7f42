"""Flax ResNet ⇄ real torchvision ResNet: strict loads, exact round trips, eval and train-mode parity."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision
from flax import nnx
from torch_helpers import assert_state_equal, calibrate_bn, flax_forward, nchw_to_nhwc, numpy_state

from cemjax.convert import (
    WeightMismatchError,
    export_resnet,
    import_resnet,
    read_weights,
    to_torch_state_dict,
)
from cemjax.models import ResNet

TOL = 1e-4


def torchvision_resnet(depth: int, in_channels: int = 1, num_classes: int = 1000) -> torch.nn.Module:
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = torch.nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    return model


@pytest.fixture(scope="module")
def calibrated_resnet50():
    torch.manual_seed(0)
    model = torchvision_resnet(50, num_classes=10)
    return calibrate_bn(model, torch.rand(4, 1, 224, 224))


@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_resnet50_flax_export_loads_strict_and_matches(calibrated_resnet50, tmp_path, size):
    """torch weights → Flax → exported file → a fresh torchvision resnet50 (strict) gives the Flax output."""
    flax_model = ResNet(50, num_classes=10, rngs=nnx.Rngs(1))
    import_resnet(flax_model, numpy_state(calibrated_resnet50))
    flax_model.eval()

    path = export_resnet(flax_model, tmp_path / "resnet50.pth")
    reloaded = torchvision_resnet(50, num_classes=10)
    reloaded.load_state_dict(torch.load(path, weights_only=True), strict=True)
    reloaded.eval()

    x = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reloaded(x).numpy()
    actual = np.asarray(flax_forward(flax_model, jnp.asarray(nchw_to_nhwc(x))))
    assert np.abs(expected).max() > 0.1  # a non-trivial output
    assert np.abs(actual - expected).max() < TOL


def test_torch_flax_torch_round_trip_is_exact(calibrated_resnet50, tmp_path):
    original = numpy_state(calibrated_resnet50)
    flax_model = ResNet(50, num_classes=10, rngs=nnx.Rngs(2))
    report = import_resnet(flax_model, original)
    assert len(report.loaded) == len(original)
    assert_state_equal(to_torch_state_dict(flax_model), original)
    # and through a safetensors file, without torch
    path = export_resnet(flax_model, tmp_path / "resnet50.safetensors")
    assert_state_equal(read_weights(path), original)


@pytest.mark.parametrize("depth", [18, 34])
def test_resnet18_34_parameter_names_and_shapes_equal_torchvision(depth):
    flax_model = ResNet(depth, in_channels=3, num_classes=7, rngs=nnx.Rngs(0))
    expected = {k: tuple(v.shape) for k, v in torchvision_resnet(depth, 3, 7).state_dict().items()}
    assert {k: v.shape for k, v in to_torch_state_dict(flax_model).items()} == expected


def test_init_statistics_follow_torchvision():
    """Kaiming-normal (fan_out) convs: the std of a 3×3×64→64 kernel is sqrt(2 / (9·64))."""
    kernel = np.asarray(ResNet(18, rngs=nnx.Rngs(0)).layer1[0].conv2.kernel[...])
    assert abs(kernel.std() / np.sqrt(2 / (9 * 64)) - 1) < 0.05
    assert abs(kernel.mean()) < 0.01


def test_train_mode_forward_updates_bn_like_torch():
    """One train-mode forward: outputs and every BN running_mean/var/num_batches_tracked equal torch's."""
    torch.manual_seed(4)
    tmodel = torchvision_resnet(18, num_classes=5)
    flax_model = ResNet(18, num_classes=5, rngs=nnx.Rngs(0))
    import_resnet(flax_model, numpy_state(tmodel))
    x = torch.rand(3, 1, 64, 96) * 2 + 0.5  # mean far from 0: exercises the two-pass variance
    tmodel.train()
    with torch.no_grad():
        expected = tmodel(x).numpy()
    flax_model.train()
    actual = np.asarray(flax_model(jnp.asarray(nchw_to_nhwc(x))))
    np.testing.assert_allclose(actual, expected, atol=TOL)
    after_torch, after_flax = numpy_state(tmodel), to_torch_state_dict(flax_model)
    for key, value in after_torch.items():
        if "running" in key or "num_batches" in key:
            np.testing.assert_allclose(after_flax[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    assert after_flax["bn1.num_batches_tracked"] == 1


def test_rgb_stem_needs_explicit_fold():
    rgb = numpy_state(torchvision_resnet(18, in_channels=3))
    gray = ResNet(18, in_channels=1, rngs=nnx.Rngs(0))
    with pytest.raises(WeightMismatchError, match=r"conv1\.weight.*\(64, 3, 7, 7\).*\(64, 1, 7, 7\).*stem='sum'"):
        import_resnet(gray, rgb)
    report = import_resnet(gray, rgb, stem="sum")
    assert any("folded" in note for note in report.notes)
    np.testing.assert_allclose(
        np.asarray(gray.conv1.kernel[...])[..., 0, :],
        rgb["conv1.weight"].sum(1).transpose(1, 2, 0),
        rtol=1e-6,
    )


def test_missing_and_unexpected_keys_are_named():
    state = numpy_state(torchvision_resnet(18))
    del state["layer2.0.bn1.running_var"]
    state["layer9.weight"] = np.zeros(3, np.float32)
    with pytest.raises(WeightMismatchError) as err:
        import_resnet(ResNet(18, rngs=nnx.Rngs(0)), state)
    assert "missing key 'layer2.0.bn1.running_var'" in str(err.value)
    assert "unexpected key 'layer9.weight'" in str(err.value)


def test_bf16_compute_keeps_fp32_params_and_stays_close():
    model = ResNet(18, num_classes=4, rngs=nnx.Rngs(0))
    bf16 = ResNet(18, num_classes=4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert all(v.get_value().dtype == jnp.float32 for _, v in nnx.to_flat_state(nnx.state(bf16, nnx.Param)))
    x = jnp.asarray(np.random.default_rng(0).random((2, 64, 64, 1), np.float32))
    model.eval(), bf16.eval()
    full, half = np.asarray(model(x)), np.asarray(bf16(x))
    assert half.dtype == np.float32
    assert np.abs(full - half).max() < 0.05 * np.abs(full).max() + 1e-2
