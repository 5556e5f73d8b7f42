"""Flax Unet ⇄ real segmentation_models_pytorch Unet: strict loads and eval parity at square and non-square sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from flax import nnx
from torch_helpers import assert_state_equal, calibrate_bn, cast_float_state, flax_forward, nchw_to_nhwc, numpy_state

from cemjax.convert import encoder_to_unet_state, export_unet, import_resnet, import_unet, to_torch_state_dict
from cemjax.models import ResNet, Unet

TOL = 1e-4
CLASSES = 3


@pytest.fixture(scope="module")
def smp_unet50():
    torch.manual_seed(0)
    model = smp.Unet("resnet50", encoder_weights=None, in_channels=1, classes=CLASSES)
    return calibrate_bn(model, torch.rand(2, 1, 224, 224))


@pytest.fixture(scope="module")
def flax_unet50(smp_unet50):
    model = Unet("resnet50", in_channels=1, classes=CLASSES, rngs=nnx.Rngs(0))
    import_unet(model, numpy_state(smp_unet50))
    model.eval()
    return model


def test_unet_names_and_shapes_equal_smp(smp_unet50):
    fresh = Unet("resnet50", in_channels=1, classes=CLASSES, rngs=nnx.Rngs(0))
    expected = {k: tuple(v.shape) for k, v in smp_unet50.state_dict().items()}
    assert {k: v.shape for k, v in to_torch_state_dict(fresh).items()} == expected


@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_exported_unet_loads_strict_into_smp_and_matches(flax_unet50, tmp_path, size):
    """Exported weights load strictly into smp; outputs agree to 1e-4 in float64, and in float32 Flax is as
    close to the float64 truth as torch's own float32 run is.

    Why not 1e-4 in float32: a UNet-50 output of magnitude ~5 carries ~2e-4 of float32 rounding in *torch
    itself* (torch32 vs torch64, measured here), so no float32 implementation can agree with it to 1e-4.
    """
    path = export_unet(flax_unet50, tmp_path / "unet.pth")
    reloaded = smp.Unet("resnet50", encoder_weights=None, in_channels=1, classes=CLASSES)
    reloaded.load_state_dict(torch.load(path, weights_only=True), strict=True)
    reloaded.eval()
    x = torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch32 = reloaded(x).numpy().transpose(0, 2, 3, 1)
        torch64 = reloaded.double()(x.double()).numpy().transpose(0, 2, 3, 1)
    flax32 = np.asarray(flax_forward(flax_unet50, jnp.asarray(nchw_to_nhwc(x))))
    assert flax32.shape == (1, *size, CLASSES)
    assert np.abs(torch64).max() > 0.1

    with jax.enable_x64(True):
        flax64_model = Unet("resnet50", in_channels=1, classes=CLASSES, rngs=nnx.Rngs(0))
        import_unet(flax64_model, path)
        cast_float_state(flax64_model, jnp.float64)
        flax64_model.eval()
        flax64 = np.asarray(flax_forward(flax64_model, jnp.asarray(nchw_to_nhwc(x.double()))))
    assert flax64.dtype == np.float64
    assert np.abs(flax64 - torch64).max() < TOL * 1e-3  # same function: only float64 rounding differs

    torch_error = np.abs(torch32 - torch64).max()
    flax_error = np.abs(flax32 - torch64).max()
    print(f"UNet-50 {size}: |torch32-torch64|={torch_error:.2e} |flax32-torch64|={flax_error:.2e}")
    assert flax_error < 1.5 * torch_error + 1e-6
    assert np.abs(flax32 - torch32).max() < 3 * torch_error + 1e-6


def test_unet_round_trip_exact(smp_unet50, flax_unet50):
    assert_state_equal(to_torch_state_dict(flax_unet50), numpy_state(smp_unet50))


def test_encoder_weights_move_between_resnet_and_unet():
    """docs/method.md §3: encoder keys without fc, prefixed `encoder.`, load into smp's Unet encoder."""
    encoder = ResNet(18, num_classes=128, head="mlp", rngs=nnx.Rngs(3))
    unet_state = encoder_to_unet_state(encoder)
    target = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    missing, unexpected = target.load_state_dict(
        {k: torch.from_numpy(v.copy()) for k, v in unet_state.items()}, strict=False
    )
    assert not unexpected and all(not k.startswith("encoder.") for k in missing)
    flax_unet = Unet("resnet18", classes=1, rngs=nnx.Rngs(0))
    report = import_unet(flax_unet, unet_state)  # encoder-only layout → the Unet's encoder
    np.testing.assert_array_equal(flax_unet.encoder.conv1.kernel[...], encoder.conv1.kernel[...])
    assert len(report.loaded) == len(unet_state)
    back = ResNet(18, head=None, rngs=nnx.Rngs(1))
    import_resnet(back, to_torch_state_dict(flax_unet))  # an smp Unet's encoder → a bare ResNet
    np.testing.assert_array_equal(back.layer4[1].bn2.running_var[...], encoder.layer4[1].bn2.running_var[...])


def test_non_multiple_of_32_is_refused_clearly(flax_unet50):
    with pytest.raises(ValueError, match="multiples of 32"):
        flax_unet50(jnp.zeros((1, 100, 64, 1)))
