"""MoCoV2 pure functions against PyTorch computations written from the reference's definition."""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx
from torch_helpers import nchw_to_nhwc

from cemjax.methods.mocov2 import loss as mocov2
from cemjax.models import BatchNorm
from cemjax.models.layers import set_batchnorm_groups


def _torch_moco_loss(q, k, queue_dk, temperature):
    """The reference: l_pos = einsum('nc,nc->n'), l_neg = einsum('nc,ck->nk', q, queue), CE with label 0."""
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,ck->nk", q, queue_dk)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    labels = torch.zeros(logits.shape[0], dtype=torch.long)
    top1 = (logits.argmax(1) == 0).float().mean()
    return torch.nn.functional.cross_entropy(logits, labels), top1


def test_info_nce_equals_reference_definition():
    rng = np.random.default_rng(0)
    q, k = (
        torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(8, 16)).astype(np.float32)), dim=1)
        for _ in "qk"
    )
    queue = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(16, 32)).astype(np.float32)), dim=0)
    expected_loss, expected_top1 = _torch_moco_loss(q, k, queue, 0.2)
    logits = mocov2.contrastive_logits(jnp.asarray(q.numpy()), jnp.asarray(k.numpy()), jnp.asarray(queue.numpy().T))
    loss, top1 = mocov2.info_nce(logits)
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=1e-5)
    assert float(top1) == float(expected_top1)


def test_gradient_flows_only_through_queries():
    q = mocov2.l2_normalize(jnp.arange(12.0).reshape(3, 4) + 1)
    queue = mocov2.initial_queue(jax.random.key(0), size=6, dim=4)
    grad_k = jax.grad(lambda k: mocov2.info_nce(mocov2.contrastive_logits(q, k, queue))[0])(q * 0.5)
    grad_q = jax.grad(lambda x: mocov2.info_nce(mocov2.contrastive_logits(x, q, queue))[0])(q)
    assert not np.any(np.asarray(grad_k)) and np.any(np.asarray(grad_q))


def test_enqueue_writes_at_pointer_and_wraps():
    queue = jnp.zeros((8, 2))
    keys = jnp.ones((4, 2))
    queue, ptr = mocov2.enqueue(queue, jnp.asarray(4), keys)
    assert int(ptr) == 0 and np.all(np.asarray(queue[4:]) == 1) and not np.any(np.asarray(queue[:4]))
    queue, ptr = mocov2.enqueue(queue, ptr, 2 * keys)
    assert int(ptr) == 4 and np.all(np.asarray(queue[:4]) == 2)


def test_momentum_update_matches_reference_rule():
    pk, pq = {"w": jnp.full(3, 2.0)}, {"w": jnp.full(3, 4.0)}
    out = mocov2.momentum_update(pk, pq, 0.999)
    np.testing.assert_allclose(np.asarray(out["w"]), 2.0 * 0.999 + 4.0 * 0.001, rtol=1e-6)


def test_initial_queue_rows_are_unit_vectors():
    queue = mocov2.initial_queue(jax.random.key(1), size=64, dim=128)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(queue), axis=1), 1.0, rtol=1e-5)


def test_grouped_batchnorm_equals_per_gpu_torch_batchnorm():
    """num_groups=G behaves like G torch BatchNorm2d replicas, each seeing its own sub-batch (DDP, no SyncBN)."""
    x = torch.randn(6, 5, 4, 3) * 3 + 1
    groups = 3
    expected, means, vars_ = [], [], []
    for chunk in x.chunk(groups):
        bn = torch.nn.BatchNorm2d(5).train()
        expected.append(bn(chunk).detach())
        means.append(bn.running_mean)
        vars_.append(bn.running_var)
    flax_bn = BatchNorm(5)
    holder = nnx.List([flax_bn])
    set_batchnorm_groups(holder, groups)
    actual = np.asarray(flax_bn(jnp.asarray(nchw_to_nhwc(x))))
    np.testing.assert_allclose(actual, nchw_to_nhwc(torch.cat(expected)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(flax_bn.running_mean[...]), torch.stack(means).mean(0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(flax_bn.running_var[...]), torch.stack(vars_).mean(0), atol=1e-5)
