"""The MoCoV2 trainer in-process: mesh invariance, restore onto another mesh, NaN handling, config checks,
and the loss of a Flax step against PyTorch on the converted weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from cemjax.configs.mocov2 import get_config
from cemjax.convert import to_torch_state_dict
from cemjax.methods.mocov2 import loss as mocov2
from cemjax.methods.mocov2 import step as moco_step
from cemjax.methods.mocov2.data import mocov2_views
from cemjax.methods.mocov2.trainer import train, validate
from cemjax.train.loop import NonFiniteLossError


def _config(**overrides):
    """The test variant without exports; `mesh__num_devices=4` sets `config.mesh.num_devices`."""
    config = get_config("test")
    config.export_at_end = False
    config.update_from_flattened_dict({key.replace("__", "."): value for key, value in overrides.items()})
    return config


def _params(outputs):
    return jax.tree.map(np.asarray, jax.device_get(outputs["state"].params_q))


def _losses(workdir):
    import json

    return [json.loads(line)["loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_eight_devices_match_one_device(tmp_path):
    """Same per-step losses and parameters on a 1-device and an 8-device mesh for 2 steps.

    Measured here: step-1 losses agree to 2e-7. On random-noise images the step-1 parameters agree to 6e-8;
    on EM patches (flat, zero-filled rotation corners → tied max-pool windows) the partitioned backward pass
    routes some gradients differently: the step-1 gradient norms differ by 3e-4 to 1.5e-3 relative (depending on
    how XLA partitions the program; the batch's true-size array moves it), step-2 losses by up to 1.5e-3, and
    after 2 SGD steps parameters by ≤ 2.5e-3. Tolerances: step-1 loss 1e-5, step-2 loss 3e-3, parameters 5e-3.
    """
    small = dict(max_steps=2, log_every=1, image_size=64, batch_size=16, data__synthetic_patches=64)
    one = train(_config(mesh__num_devices=1, **small), str(tmp_path / "one"))
    eight = train(_config(mesh__num_devices=8, **small), str(tmp_path / "eight"))
    losses_one, losses_eight = _losses(tmp_path / "one"), _losses(tmp_path / "eight")
    assert abs(losses_one[0] - losses_eight[0]) < 1e-5
    np.testing.assert_allclose(losses_one, losses_eight, atol=3e-3)
    diffs = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), _params(one), _params(eight))
    assert max(jax.tree.leaves(diffs)) < 5e-3


def test_restore_onto_a_different_mesh(tmp_path):
    """Saved on 8 devices at step 4, resumed on 4: continues from step 4 with the restored state."""
    workdir = str(tmp_path / "run")
    first = train(_config(max_steps=4, mesh__num_devices=8), workdir)
    saved = _params(first)
    config = _config(max_steps=5, mesh__num_devices=4)
    resumed = train(config, workdir)
    assert resumed["step"] == 5
    sharding = jax.tree.leaves(resumed["state"].params_q)[0].sharding
    assert len(sharding.device_set) == 4
    # one more SGD step moved the parameters a little from the saved ones, not back to a fresh init
    drift = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), _params(resumed), saved)))
    assert 0 < drift < 0.1


def test_non_finite_loss_stops_before_saving(tmp_path):
    workdir = tmp_path / "diverge"
    with pytest.raises(NonFiniteLossError, match="stopped without saving"):
        train(_config(optim__base_lr=1e30, checkpoint_every=2, log_every=1, mesh__num_devices=1), str(workdir))
    import json

    saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    finite_steps = {r["step"] for r in rows if np.isfinite(r["loss"])}
    assert set(saved) <= finite_steps
    # the loss of the last step is finite (it is computed before the update), the state after it is not: nothing
    # is saved and nothing exported
    last = tmp_path / "last_step"
    with pytest.raises(NonFiniteLossError, match=r"array\(s\) of the state are non-finite after the update at step 1"):
        train(
            _config(
                optim__base_lr=3e38, optim__weight_decay=1e38, max_steps=1, mesh__num_devices=1, export_at_end=True
            ),
            str(last),
        )
    assert not (last / "export").exists() and not [p for p in (last / "checkpoints").iterdir() if p.name.isdigit()]


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="batch_size=8 is not divisible by the 3 devices"):
        validate(_config(), 3)
    with pytest.raises(ValueError, match="moco.queue_size=60 must be a multiple of batch_size=8"):
        validate(_config(moco__queue_size=60), 1)
    with pytest.raises(ValueError, match="moco.bn_groups=3"):
        validate(_config(moco__bn_groups=3), 1)
    with pytest.raises(ValueError, match="unknown config variant 'papr'"):
        get_config("papr")


def test_flax_moco_loss_equals_torch_on_converted_weights():
    """One Flax train step's loss == the reference's loss computed by PyTorch on the converted weights,
    the same two views and the same queue (SyncBN mode: one BN group, as a single-GPU torch run)."""
    import torchvision

    config = _config(moco__bn_mode="sync")
    encoder = moco_step.query_encoder(config.model, seed=0)
    tx = moco_step.sgd_with_weight_decay(lambda s: 0.01, 0.9, 1e-4)
    graphdef, state = moco_step.init_state(encoder, tx, queue_size=64, embed_dim=32, seed=0)
    step = moco_step.make_train_step(
        graphdef,
        tx,
        lambda s: 0.01,
        momentum=0.999,
        temperature=0.2,
        bn_mode="sync",
        bn_groups=1,
        image_size=config.image_size,
        norms=tuple(config.data.norms),
    )
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (8, 48, 48, 1), dtype=np.uint8))
    key = jax.random.key(3)
    _, metrics = jax.jit(step)(state, {"image": images}, key)

    aug_key, _ = jax.random.split(jax.random.fold_in(key, 0))
    view_q, view_k = mocov2_views(
        images, aug_key, None, size=config.image_size, mean=config.data.norms[0], std=config.data.norms[1]
    )
    encoder_q, encoder_k = moco_step.encoders_from_state(graphdef, state)
    params_k = mocov2.momentum_update(state.params_k, state.params_q, 0.999)
    encoder_k = nnx.merge(graphdef, params_k, state.stats_k)

    def torch_encoder(flax_model):
        net = torchvision.models.resnet18(num_classes=32)
        net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        net.fc = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), net.fc)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in to_torch_state_dict(flax_model).items()})
        return net.train()

    to_nchw = lambda v: torch.from_numpy(np.asarray(v).transpose(0, 3, 1, 2).copy())  # noqa: E731
    with torch.no_grad():
        q = torch.nn.functional.normalize(torch_encoder(encoder_q)(to_nchw(view_q)), dim=1)
        k = torch.nn.functional.normalize(torch_encoder(encoder_k)(to_nchw(view_k)), dim=1)
        queue = torch.from_numpy(np.asarray(state.queue).T.copy())  # reference layout [D, K]
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], dim=1) / 0.2
        expected = torch.nn.functional.cross_entropy(logits, torch.zeros(8, dtype=torch.long)).item()
    assert abs(float(metrics["loss"]) - expected) <= 1e-4
