"""The reference MoCo `.pth.tar`, SwAV/DDP saves, safetensors, and safe loading of untrusted pickles."""

import os
import pickle

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision
from flax import nnx
from torch_helpers import assert_state_equal, calibrate_bn, nchw_to_nhwc, numpy_state

from cemjax.convert import (
    CheckpointFormatError,
    UnsafeCheckpointError,
    detect_layout,
    export_moco,
    import_moco,
    import_resnet,
    read_weights,
)
from cemjax.models import ResNet

QUEUE = 64  # K; the paper uses 65,536 — the layout is what matters here


class TorchMoCo(torch.nn.Module):
    """The reference MoCo module's layout: two torchvision encoders with an MLP fc, and the key queue."""

    def __init__(self, depth=18, dim=128, k=QUEUE):
        super().__init__()
        self.encoder_q, self.encoder_k = (self._encoder(depth, dim) for _ in range(2))
        self.register_buffer("queue", torch.nn.functional.normalize(torch.randn(dim, k), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @staticmethod
    def _encoder(depth, dim):
        net = getattr(torchvision.models, f"resnet{depth}")(num_classes=dim)
        net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        hidden = net.fc.weight.shape[1]
        net.fc = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), net.fc)
        return net


class DDP(torch.nn.Module):
    """Stands in for DistributedDataParallel's naming: everything under `module.`."""

    def __init__(self, module):
        super().__init__()
        self.module = module


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    moco = TorchMoCo()
    calibrate_bn(moco.encoder_q, torch.rand(4, 1, 64, 64))
    moco.queue_ptr[0] = 17
    model = DDP(moco)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.015, momentum=0.9, weight_decay=1e-4)
    path = tmp_path_factory.mktemp("ref") / "checkpoint_0003.pth.tar"
    torch.save(
        {
            "epoch": 3,
            "arch": "resnet18",
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "norms": [0.58331613, 0.09966064],
        },
        path,
    )
    return path, model


def _moco_encoders():
    make = lambda seed: ResNet(18, num_classes=128, head="mlp", rngs=nnx.Rngs(seed))  # noqa: E731
    return make(0), make(1)


def test_reference_moco_checkpoint_imports_and_matches(reference_checkpoint):
    path, model = reference_checkpoint
    encoder_q, encoder_k = _moco_encoders()
    queue, queue_ptr, meta = import_moco(encoder_q, encoder_k, path)
    assert queue.shape == (QUEUE, 128) and queue_ptr == 17
    assert meta["norms"] == [0.58331613, 0.09966064] and meta["epoch"] == 3
    np.testing.assert_array_equal(queue, model.module.queue.numpy().T)
    x = torch.rand(2, 1, 96, 64)
    with torch.no_grad():
        expected = model.module.encoder_q.eval()(x).numpy()
    encoder_q.eval()
    np.testing.assert_allclose(np.asarray(encoder_q(jnp.asarray(nchw_to_nhwc(x)))), expected, atol=1e-4)


def test_exported_moco_checkpoint_loads_strict_into_the_reference_layout(reference_checkpoint, tmp_path):
    path, model = reference_checkpoint
    encoder_q, encoder_k = _moco_encoders()
    queue, queue_ptr, _ = import_moco(encoder_q, encoder_k, path)
    out = export_moco(tmp_path / "out.pth.tar", encoder_q, encoder_k, queue, queue_ptr, epoch=3)
    loaded = torch.load(out, weights_only=True)
    assert loaded["arch"] == "resnet18" and loaded["epoch"] == 3 and len(loaded["norms"]) == 2
    fresh = DDP(TorchMoCo())
    fresh.load_state_dict(loaded["state_dict"], strict=True)
    assert_state_equal(numpy_state(fresh), numpy_state(model))


def test_swav_style_ddp_checkpoint_imports_encoder_and_ignores_heads(tmp_path):
    """CEM1.5M SwAV: bare ResNet keys under `module.` plus projection head and prototypes."""
    net = torchvision.models.resnet18()
    net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    state["module.projection_head.0.weight"] = torch.zeros(8, 512)
    state["module.prototypes.weight"] = torch.zeros(30, 8)
    path = tmp_path / "cem15m_swav.pth"
    torch.save({"state_dict": state, "norms": [0.57287007, 0.12740536]}, path)
    model = ResNet(18, head=None, rngs=nnx.Rngs(0))
    report = import_resnet(model, path)
    assert detect_layout({k: v.numpy() for k, v in state.items()}) == "ddp"
    assert "module.prototypes.weight" in report.ignored and "module.projection_head.0.weight" in report.ignored
    np.testing.assert_array_equal(
        np.asarray(model.layer3[0].downsample[0].kernel[...]),
        net.layer3[0].downsample[0].weight.detach().numpy().transpose(2, 3, 1, 0),
    )


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch_zip", "plain_pickle"])
def test_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"conv1.weight": torch.zeros(1)}, "hook": _RunsCode(marker)}
    if writer == "torch_zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pth: refused.*Nothing from it was executed"):
        read_weights(path)
    with pytest.raises(UnsafeCheckpointError):
        import_resnet(ResNet(18, rngs=nnx.Rngs(0)), path)
    assert not marker.exists()


def test_empty_truncated_and_foreign_files_get_clear_errors(tmp_path, reference_checkpoint):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match=r"empty\.pth: the file is empty"):
        read_weights(empty)
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(reference_checkpoint[0].read_bytes()[:5000])
    with pytest.raises((CheckpointFormatError, UnsafeCheckpointError), match="truncated.pth.tar"):
        read_weights(truncated)
    bad_safetensors = tmp_path / "weights.safetensors"
    bad_safetensors.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointFormatError, match=r"weights\.safetensors: not a readable safetensors"):
        read_weights(bad_safetensors)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_weights(tmp_path / "missing.pth")
    with pytest.raises(CheckpointFormatError, match="not a MoCo checkpoint"):
        net = torchvision.models.resnet18()
        import_moco(*_moco_encoders(), {k: v.numpy() for k, v in net.state_dict().items()})
