"""SwAV's math against the reference's, restated in PyTorch from pretraining/swav/train_swav.py and LARC.py:
Sinkhorn, the codes with and without the queue, the swapped-prediction loss and its gradient, the queue shift,
LARC + SGD with frozen prototypes, the warm-up + cosine schedule."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cemjax.methods.swav import loss as swav
from cemjax.train.optim import larc_sgd
from cemjax.train.schedules import warmup_cosine

EPS, ITERS, TEMP = 0.05, 3, 0.1


def torch_sinkhorn(out, epsilon=EPS, iterations=ITERS):
    """The reference's `distributed_sinkhorn` on one process (its all-reduces are identities there)."""
    q = torch.exp(out / epsilon).t()
    b, k = q.shape[1], q.shape[0]
    q /= torch.sum(q)
    for _ in range(iterations):
        q /= torch.sum(q, dim=1, keepdim=True)
        q /= k
        q /= torch.sum(q, dim=0, keepdim=True)
        q /= b
    q *= b
    return q.t()


def torch_swav_loss(output, embedding, queue, prototypes, bs, n_crops, crops_for_assign):
    """The loss section of the reference's `train` loop: codes (with the queue when it is in use), the queue
    fill, the swapped prediction. `queue` [A, L, D] is updated in place, as there. Returns the loss."""
    loss, use_the_queue = 0, False
    for i, crop_id in enumerate(crops_for_assign):
        with torch.no_grad():
            out = output[bs * crop_id : bs * (crop_id + 1)].detach()
            if queue is not None:
                if use_the_queue or not torch.all(queue[i, -1, :] == 0):
                    use_the_queue = True
                    out = torch.cat((torch.mm(queue[i], prototypes.t()), out))
                queue[i, bs:] = queue[i, :-bs].clone()
                queue[i, :bs] = embedding[crop_id * bs : (crop_id + 1) * bs]
            q = torch_sinkhorn(out)[-bs:]
        subloss = 0
        for v in np.delete(np.arange(n_crops), crop_id):
            x = output[bs * v : bs * (v + 1)] / TEMP
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (n_crops - 1)
    return loss / len(crops_for_assign)


def _unit_rows(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_sinkhorn_equals_the_reference():
    rng = np.random.default_rng(0)
    scores = _unit_rows(rng, 24, 16) @ _unit_rows(rng, 30, 16).T  # cosine scores in [-1, 1], N=24, K=30
    expected = torch_sinkhorn(torch.from_numpy(scores)).numpy()
    actual = np.asarray(swav.sinkhorn(jnp.asarray(scores), EPS, ITERS))
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(actual.sum(1), 1.0, rtol=1e-5)  # rows are assignments


@pytest.mark.parametrize("queue_state", ["none", "filling", "full"])
def test_codes_loss_gradient_and_queue_equal_the_reference(queue_state):
    """V = 4 views (2 assigned) of B = 6 samples, K = 20 prototypes, D = 8, queue of 12 rows per view."""
    rng = np.random.default_rng(1)
    v, b, k, d, length, assign = 4, 6, 20, 8, 12, (0, 1)
    prototypes = _unit_rows(rng, k, d)
    embedding = _unit_rows(rng, v * b, d)
    queue = np.zeros((2, length, d), np.float32)
    if queue_state == "filling":
        queue[:, :6] = _unit_rows(rng, 2, 6, d)
    elif queue_state == "full":
        queue[:] = _unit_rows(rng, 2, length, d)

    output = torch.from_numpy(embedding @ prototypes.T).requires_grad_(True)
    t_queue = torch.from_numpy(queue.copy())
    t_loss = torch_swav_loss(output, torch.from_numpy(embedding), t_queue, torch.from_numpy(prototypes), b, v, assign)
    t_loss.backward()

    def ours(scores):
        scores = scores.reshape(v, b, k)
        queue_scores = jnp.asarray(queue) @ jnp.asarray(prototypes).T
        codes = swav.assignments(scores, assign, EPS, ITERS, queue_scores, swav.queue_is_full(jnp.asarray(queue)))
        return swav.swapped_prediction_loss(scores, codes, assign, TEMP)

    loss, grad = jax.value_and_grad(ours)(jnp.asarray(embedding @ prototypes.T))
    assert abs(float(loss) - t_loss.item()) < 1e-5
    np.testing.assert_allclose(np.asarray(grad), output.grad.numpy(), atol=1e-6)
    pushed = swav.enqueue(jnp.asarray(queue), jnp.asarray(embedding.reshape(v, b, d))[jnp.asarray(assign)])
    np.testing.assert_array_equal(np.asarray(pushed), t_queue.numpy())
    assert bool(swav.queue_is_full(jnp.asarray(queue))) == (queue_state == "full")


def test_normalize_prototypes_equals_torch_normalize_of_the_weight():
    kernel = np.random.default_rng(2).standard_normal((8, 5)).astype(np.float32)  # [D, K]; torch weight is [K, D]
    expected = F.normalize(torch.from_numpy(kernel.T), dim=1, p=2).numpy().T
    np.testing.assert_allclose(np.asarray(swav.normalize_prototypes(jnp.asarray(kernel))), expected, rtol=1e-6)


class TorchLARC:
    """The reference's LARC.py (clip=False) around torch SGD, restated: weight decay absorbed, then SGD."""

    def __init__(self, optimizer, trust=1e-3, eps=1e-8):
        self.optim, self.trust, self.eps = optimizer, trust, eps

    def step(self):
        with torch.no_grad():
            decays = []
            for group in self.optim.param_groups:
                decays.append(group["weight_decay"])
                wd, group["weight_decay"] = group["weight_decay"], 0
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p_norm, g_norm = torch.norm(p.data), torch.norm(p.grad.data)
                    if p_norm != 0 and g_norm != 0:
                        adaptive = self.trust * p_norm / (g_norm + p_norm * wd + self.eps)
                        p.grad.data += wd * p.data
                        p.grad.data *= adaptive
        self.optim.step()
        for group, wd in zip(self.optim.param_groups, decays, strict=True):
            group["weight_decay"] = wd


def test_larc_sgd_with_frozen_prototypes_equals_the_reference():
    """6 steps under a changing lr; a zero-initialised bias (LARC leaves its first gradient alone) and a
    prototype tensor whose gradient the reference drops for the first 3 steps."""
    rng = np.random.default_rng(3)
    init = {"w": rng.standard_normal((5, 4)), "bias": np.zeros(4), "prototypes": rng.standard_normal((4, 3))}
    grads = [{k: rng.standard_normal(v.shape) for k, v in init.items()} for _ in range(6)]
    lrs = [0.6 * 0.5 ** (i / 2) for i in range(6)]
    wd, freeze = 1e-3, 3

    params = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True) for k, v in init.items()}
    larc = TorchLARC(torch.optim.SGD(params.values(), lr=lrs[0], momentum=0.9, weight_decay=wd))
    for i, g in enumerate(grads):
        for group in larc.optim.param_groups:
            group["lr"] = lrs[i]
        for name, p in params.items():
            p.grad = None if (name == "prototypes" and i < freeze) else torch.tensor(g[name], dtype=torch.float32)
        larc.step()

    tx = larc_sgd(lambda step: jnp.asarray(lrs)[step], momentum=0.9, weight_decay=wd)
    ours = {k: jnp.asarray(v, jnp.float32) for k, v in init.items()}
    state = tx.init(ours)
    for i, g in enumerate(grads):
        g = {k: jnp.asarray(v, jnp.float32) * (0.0 if (k == "prototypes" and i < freeze) else 1.0)
             for k, v in g.items()}  # fmt: skip
        updates, state = tx.update(g, state, ours)
        ours = {k: ours[k] + updates[k] for k in ours}
    for name, p in params.items():
        np.testing.assert_allclose(np.asarray(ours[name]), p.detach().numpy(), rtol=1e-5, atol=1e-7, err_msg=name)


def test_warmup_cosine_equals_the_reference_schedule():
    """The reference's arrays: np.linspace warm-up, then the cosine from base_lr to final_lr."""
    per_epoch, epochs, warmup, base, final, start = 7, 5, 2, 0.6, 0.0006, 0.01
    warm = np.linspace(start, base, per_epoch * warmup)
    iters = np.arange(per_epoch * (epochs - warmup))
    cosine = [final + 0.5 * (base - final) * (1 + math.cos(math.pi * t / (per_epoch * (epochs - warmup))))
              for t in iters]  # fmt: skip
    expected = np.concatenate([warm, cosine])
    schedule = warmup_cosine(base, final, total_steps=per_epoch * epochs, warmup_steps=per_epoch * warmup,
                             start_lr=start)  # fmt: skip
    np.testing.assert_allclose([float(schedule(s)) for s in range(len(expected))], expected, rtol=1e-5)  # float32
