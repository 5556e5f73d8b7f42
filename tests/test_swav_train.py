"""SwAV end to end: the CEM1.5M checkpoint layout both ways against the reference's model restated in PyTorch,
a Flax step's loss against that model's, and a tiny run that trains, resumes exactly, exports and fine-tunes."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import torch
import torchvision
import toy_encoder  # noqa: F401  (registers "tiny_cnn": the run test needs SwAV's logic, not a big encoder)
from flax import nnx
from test_probe import tensorboard_scalars
from test_swav_math import torch_swav_loss
from torch_helpers import calibrate_bn, nchw_to_nhwc

from cemjax import methods
from cemjax.configs import get_config
from cemjax.convert import export_swav, import_resnet, import_swav, read_weights
from cemjax.methods.swav import loss as swav
from cemjax.methods.swav import step as swav_step
from cemjax.methods.swav.data import MultiCrop
from cemjax.methods.swav.export import restore
from cemjax.methods.swav.model import SwAVModel
from cemjax.models import ResNet
from cemjax.seg.trainer import finetune
from cemjax.train.optim import larc_sgd

HIDDEN, DIM, K = 64, 16, 20


class TorchSwAV(torch.nn.Module):
    """The reference's models/resnet.py `ResNet(normalize=True, hidden_mlp, output_dim, nmb_prototypes)` for a
    ResNet-18: zero padding 1 + a 7×7 stem conv with padding 2, no fc, the projection head and prototypes;
    `forward` takes a list of crops and runs the backbone once per run of equal sizes."""

    def __init__(self):
        super().__init__()
        net = torchvision.models.resnet18()
        self.padding = torch.nn.ConstantPad2d(1, 0.0)
        self.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=2, bias=False)
        for name in ("bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            self.add_module(name, getattr(net, name))
        head = (torch.nn.Linear(512, HIDDEN), torch.nn.BatchNorm1d(HIDDEN), torch.nn.ReLU(inplace=True),
                torch.nn.Linear(HIDDEN, DIM))  # fmt: skip
        self.projection_head = torch.nn.Sequential(*head)
        self.prototypes = torch.nn.Linear(DIM, K, bias=False)

    def forward_backbone(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.padding(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, inputs):
        inputs = inputs if isinstance(inputs, list) else [inputs]
        ends = torch.cumsum(torch.unique_consecutive(torch.tensor([i.shape[-1] for i in inputs]),
                                                     return_counts=True)[1], 0)  # fmt: skip
        start, output = 0, None
        for end in ends:
            out = self.forward_backbone(torch.cat(inputs[start:end]))
            output = out if output is None else torch.cat((output, out))
            start = end
        x = torch.nn.functional.normalize(self.projection_head(output), dim=1, p=2)
        return x, self.prototypes(x)


class DDP(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module


def _flax_swav(seed=1):
    return SwAVModel("resnet18", hidden=HIDDEN, out_features=DIM, num_prototypes=K, rngs=nnx.Rngs(seed))


def _reference_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = TorchSwAV()
    calibrate_bn(model, torch.rand(6, 1, 64, 64))
    path = tmp_path / "cem15m_swav.pth.tar"
    torch.save({"epoch": 3, "state_dict": DDP(model).state_dict(), "optimizer": {}, "run_id": "mlflow",
                "norms": [0.57571, 0.12765]}, path)  # fmt: skip
    return model, path


def test_cem15m_swav_checkpoint_layout_round_trips(tmp_path):
    model, path = _reference_checkpoint(tmp_path)
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        features, (z, scores) = model.forward_backbone(x).numpy(), model(x)

    encoder = ResNet(18, head=None, rngs=nnx.Rngs(5))
    report = import_resnet(encoder, path)  # the encoder alone: SwAV's heads are ignored and reported
    assert any(k.startswith("module.prototypes") for k in report.ignored)
    encoder.eval()
    np.testing.assert_allclose(np.asarray(encoder(nchw_to_nhwc(x))), features, atol=1e-4)

    flax_model = _flax_swav()
    import_swav(flax_model, path)
    flax_model.eval()
    flax_z, flax_scores = flax_model.embed([jnp.asarray(nchw_to_nhwc(x))])
    np.testing.assert_allclose(np.asarray(flax_z), z.numpy(), atol=2e-5)
    np.testing.assert_allclose(np.asarray(flax_scores), scores.numpy(), atol=2e-5)

    out = export_swav(tmp_path / "ours.pth.tar", flax_model, epoch=3, norms=(0.57571, 0.12765))
    saved = torch.load(out, weights_only=True)
    assert saved["epoch"] == 3 and saved["norms"] == [0.57571, 0.12765]
    reloaded = DDP(TorchSwAV())
    reloaded.load_state_dict(saved["state_dict"], strict=True)
    for key, value in DDP(model).state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_flax_swav_step_loss_equals_torch_on_converted_weights(tmp_path):
    """One jitted Flax step's loss == the reference's loss from PyTorch on the same weights (prototypes
    normalised first, as the reference does), the same 2 × 32 + 2 × 16 crops, train-mode BatchNorm."""
    model, path = _reference_checkpoint(tmp_path)
    flax_model = _flax_swav()
    import_swav(flax_model, path)
    crops = MultiCrop(sizes=(32, 16), counts=(2, 2), min_scales=(0.14, 0.05), max_scales=(1.0, 0.14))
    rng = np.random.default_rng(4)
    views = tuple(jnp.asarray(rng.standard_normal((4, s, s, 1)).astype(np.float32)) for s in crops.view_sizes)
    tx = larc_sgd(lambda s: 0.1, momentum=0.9, weight_decay=1e-6)
    graphdef, state = swav_step.init_state(flax_model, tx, queue_length=0, num_assigned=2)
    step = swav_step.make_train_step(graphdef, tx, lambda s: 0.1, crops=crops, norms=(0.0, 1.0),
                                     views_fn=lambda *a, **k: views)  # fmt: skip
    new_state, metrics = jax.jit(step)(state, {"image": jnp.zeros((4, 32, 32, 1), jnp.uint8)}, jax.random.key(0))
    assert new_state.queue is None  # without a queue the state holds no zero-size array, which Orbax refuses
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "no_queue", new_state)

    with torch.no_grad():
        model.prototypes.weight.copy_(torch.nn.functional.normalize(model.prototypes.weight, dim=1, p=2))
    model.train()
    torch_views = [torch.from_numpy(np.asarray(v).transpose(0, 3, 1, 2).copy()) for v in views]
    embedding, output = model(torch_views)
    expected = torch_swav_loss(output, embedding.detach(), None, model.prototypes.weight, 4, 4, (0, 1)).item()
    assert abs(float(metrics["loss"]) - expected) < 1e-4


def _tiny_config(**overrides):
    config = get_config("swav:test")
    config.model.encoder = "tiny_cnn"
    config.mesh.num_devices = 2
    config.update(max_steps=8, checkpoint_every=2, keep_checkpoints=4, log_every=1)
    config.swav.update(queue_start_epoch=0, freeze_prototypes_steps=2)  # queue of 2 batches: full after step 2
    config.probe.update(every=4, patches=32)
    config.update_from_flattened_dict(overrides)
    return config


def _rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_tiny_swav_run_trains_resumes_exactly_exports_and_finetunes(built, tmp_path, capsys):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = methods.get("swav").train(_tiny_config(), str(whole))
    rows = {r["step"]: r for r in _rows(whole)}
    assert rows[8]["loss"] < rows[1]["loss"]
    assert [rows[s]["queue_used"] for s in (1, 2, 3, 8)] == [0, 0, 1, 1]  # in use once its last row is written
    assert all("probe/knn" in rows[s] and "probe/linear" in rows[s] for s in (0, 4, 8))
    board = tensorboard_scalars(whole)
    assert [s for s, _ in board["probe/knn"]] == [0, 4, 8] and len(board["train/loss"]) == 8

    # the prototypes do not move while frozen: after 2 steps they are the initial ones, normalised
    graphdef, at_two, config, _, _ = restore(str(whole), step=2)
    initial = swav_step.build_model(config.model, config.swav, config.seed).prototypes.kernel[...]
    np.testing.assert_allclose(np.asarray(at_two.params["prototypes"]["kernel"]),
                               np.asarray(swav.normalize_prototypes(initial)), atol=1e-6)  # fmt: skip

    # a run killed after step 6 that had saved step 4 last — its checkpoints 6 and 8 never written —, then
    # resumed: the same run to the bit (state, optimizer, queue; the data iterator restarts at step 4)
    shutil.copytree(whole, broken)
    for lost in ("6", "8"):
        shutil.rmtree(broken / "checkpoints" / lost)
    capsys.readouterr()
    resumed = methods.get("swav").train(_tiny_config(export_at_end=False), str(broken))
    assert resumed["step"] == 8 and f"resumed from step 4 in {broken}" in capsys.readouterr().out
    for a, b in zip(jax.tree.leaves(jax.device_get(done["state"])), jax.tree.leaves(jax.device_get(resumed["state"])),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # exports: the encoder files and the reference SwAV layout, which import_swav reads back exactly
    exports = done["exports"]
    assert {"safetensors", "torchvision", "unet_encoder", "swav"} <= set(exports)
    fresh = swav_step.build_model(config.model, config.swav, seed=9)
    import_swav(fresh, exports["swav"])
    trained = swav_step.model_from_state(done["graphdef"], jax.device_get(done["state"]))
    for (path, a), (_, b) in zip(nnx.to_flat_state(nnx.state(fresh)), nnx.to_flat_state(nnx.state(trained)),
                                 strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(a.get_value()), np.asarray(b.get_value()), err_msg=str(path))
    assert set(read_weights(exports["torchvision"])) == {
        k.removeprefix("module.")
        for k in read_weights(exports["swav"])["state_dict"]
        if not k.startswith(("module.projection", "module.proto"))
    }

    # the encoder feeds fine-tuning through cemjax.methods, whatever the method
    _, data_dir = built
    ft = get_config(f"finetune:benchmark=lucchi_pp,init={whole},variant=test")
    ft.model.encoder, ft.data.data_dir, ft.iterations, ft.mesh.num_devices = "tiny_cnn", data_dir, 2, 2
    out = finetune(ft, str(tmp_path / "finetune"))
    assert "SwAV step 8" in out["results"]["init_source"] and 0 <= out["results"]["iou"] <= 1
