"""`bn_mode="shard_map"`: per-device shuffle-BN under `jax.shard_map` equals grouped shuffle-BN (groups = devices)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cemjax.common.norms import CEM500K_NORMS as NORMS
from cemjax.configs.mocov2 import get_config
from cemjax.methods.mocov2 import step as moco_step
from cemjax.methods.mocov2.trainer import validate
from cemjax.models import resnet
from cemjax.train import mesh as mesh_lib

IMAGE_SIZE, BATCH, QUEUE, EMBED = 64, 16, 32, 16


def _cheap_views(images, key, valid, *, size, mean, std):
    """Stand-in for `mocov2_views` (identical in every bn_mode, so not under test here; saves compile time)."""
    x = (images[:, :size, :size].astype(jnp.float32) / 255.0 - mean) / std
    key_q, key_k = jax.random.split(key)
    return x + 0.3 * jax.random.normal(key_q, x.shape), jnp.flip(x, 2) + 0.3 * jax.random.normal(key_k, x.shape)


def _step_fn(graphdef, tx, bn_mode, mesh=None):
    return moco_step.make_train_step(
        graphdef,
        tx,
        lambda s: 0.01,
        momentum=0.99,
        temperature=0.2,
        bn_mode=bn_mode,
        bn_groups=4,
        image_size=IMAGE_SIZE,
        norms=NORMS,
        views_fn=_cheap_views,
        mesh=mesh,
    )


def _setup():
    model = get_config("test").model
    model.embed_dim = EMBED
    encoder = moco_step.query_encoder(model, seed=0)
    tx = moco_step.sgd_with_weight_decay(lambda s: 0.01, 0.9, 1e-4)
    graphdef, state = moco_step.init_state(encoder, tx, queue_size=QUEUE, embed_dim=EMBED, seed=0)
    return graphdef, tx, state


def _max_abs_diff(a, b):
    diffs = jax.tree.map(lambda x, y: float(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max()), a, b)
    return max(jax.tree.leaves(diffs))


def test_shard_map_equals_grouped_shuffle_bn_on_four_devices(monkeypatch):
    """Same key → same permutation, so device d's sub-batch is "shuffle" mode's group d: one step on a 4-device
    mesh gives the same loss, gradient norm, parameters, BN statistics (both encoders), optimizer state and
    queue as `bn_mode="shuffle", bn_groups=4`. The shard_map step is jitted like `pretrain.train` does it
    (replicated state in and out), so its running statistics must come out replicated.

    ResNet-18 widths with one BasicBlock per stage (compile time), 64 px, 16 images = 4 per device. Measured:
    loss 2e-7 apart, parameters ≤ 6e-8, statistics ≤ 1.2e-7, queue ≤ 1e-6; asserted: 1e-5 (loss relative,
    the rest absolute). At 32 px with 2 images per device layer4's BN sees 2 values per channel, is nearly
    singular (grad norm ~5e4) and float32 rounding alone moves the loss by 1e-4, so that size is not used.
    """
    monkeypatch.setitem(resnet.STAGE_BLOCKS, 18, (1, 1, 1, 1))
    graphdef, tx, host_state = _setup()
    mesh = mesh_lib.make_data_mesh(4)
    shardings = mesh_lib.state_shardings(host_state, mesh, "replicate")
    state = jax.device_put(host_state, shardings)
    images = np.random.default_rng(0).integers(0, 256, (BATCH, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
    images = {"image": jax.device_put(images, mesh_lib.data_sharding(mesh))}
    key = jax.random.key(7)

    shuffle_step = jax.jit(_step_fn(graphdef, tx, "shuffle"))
    shard_map_step = jax.jit(
        _step_fn(graphdef, tx, "shard_map", mesh=mesh),
        in_shardings=(shardings, mesh_lib.data_sharding(mesh), mesh_lib.replicated(mesh)),
        out_shardings=(shardings, mesh_lib.replicated(mesh)),
    )
    s_shuffle, m_shuffle = jax.device_get(shuffle_step(state, images, key))
    s_shard, m_shard = jax.device_get(shard_map_step(state, images, key))

    np.testing.assert_allclose(m_shard["loss"], m_shuffle["loss"], rtol=1e-5)
    np.testing.assert_allclose(m_shard["grad_norm"], m_shuffle["grad_norm"], rtol=1e-5)
    assert m_shard["top1"] == m_shuffle["top1"]
    for field in ("params_q", "stats_q", "params_k", "stats_k", "opt_state", "queue"):
        diff = _max_abs_diff(getattr(s_shard, field), getattr(s_shuffle, field))
        assert diff < 1e-5, (field, diff)
    assert int(s_shard.step) == 1 and int(s_shard.queue_ptr) == int(s_shuffle.queue_ptr) == BATCH
    # The step did something: gradients reached the query parameters, statistics moved, the queue got the keys.
    assert _max_abs_diff(s_shard.params_q, host_state.params_q) > 1e-5
    assert _max_abs_diff(s_shard.stats_k, host_state.stats_k) > 1e-3
    assert _max_abs_diff(s_shard.queue[:BATCH], host_state.queue[:BATCH]) > 1e-2


def test_shard_map_without_mesh_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(resnet.STAGE_BLOCKS, 18, (1, 1, 1, 1))
    graphdef, tx, _ = _setup()
    with pytest.raises(ValueError, match="shard_map.*mesh="):
        _step_fn(graphdef, tx, "shard_map")
    with pytest.raises(ValueError, match="bn_mode"):
        _step_fn(graphdef, tx, "local")


def test_validate_checks_shard_map_batch_against_devices():
    config = get_config("test")
    config.moco.bn_mode = "shard_map"
    validate(config, 4)  # batch 8 on 4 devices: 2 images each
    with pytest.raises(ValueError, match="devices"):
        validate(config, 3)
    with pytest.raises(ValueError, match="shard_map"):
        validate(config, 8)  # one image per device: no batch statistics
    config.moco.bn_mode = "bogus"
    with pytest.raises(ValueError, match="bn_mode"):
        validate(config, 4)
