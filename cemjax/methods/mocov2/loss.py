"""MoCoV2 as pure functions (He et al. 2020; Chen et al. 2020), with docs/method.md §2's numbers.

Conventions: embeddings are rows, `q, k`: [B, D] L2-normalised; the queue is [K, D] (rows are past keys;
the reference stores its transpose, [D, K], which `cemjax.convert` handles). The positive logit is column 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cemjax.models.layers import l2_normalize

QUEUE_SIZE = 65_536
MOMENTUM = 0.999
TEMPERATURE = 0.2
EMBED_DIM = 128


def contrastive_logits(q: jax.Array, k: jax.Array, queue: jax.Array, temperature: float = TEMPERATURE) -> jax.Array:
    """[q·k⁺, q·queueᵀ] / T → [B, 1 + K]. `k` and `queue` carry no gradient."""
    k = jax.lax.stop_gradient(k)
    queue = jax.lax.stop_gradient(queue)
    positive = jnp.sum(q * k, axis=-1, keepdims=True)
    negative = jnp.einsum("bd,kd->bk", q, queue, precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([positive, negative], axis=-1) / temperature


def info_nce(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cross entropy with label 0 (mean over the batch) and contrastive top-1 accuracy (fraction)."""
    loss = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0])
    top1 = jnp.mean((jnp.argmax(logits, axis=-1) == 0).astype(jnp.float32))
    return loss, top1


def momentum_update(key_params, query_params, momentum: float = MOMENTUM):
    """θ_k ← m θ_k + (1 − m) θ_q, leaf by leaf (parameters only; BN statistics of the key encoder are its own)."""
    return jax.tree.map(lambda pk, pq: momentum * pk + (1.0 - momentum) * pq, key_params, query_params)


def enqueue(queue: jax.Array, queue_ptr: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Write the batch's keys [B, D] at rows ptr … ptr+B−1 of the queue [K, D]; ptr advances by B mod K.

    As in the reference, K must be a multiple of the global batch size (checked by the config)."""
    keys = jax.lax.stop_gradient(keys).astype(queue.dtype)
    queue = jax.lax.dynamic_update_slice_in_dim(queue, keys, queue_ptr, axis=0)
    return queue, (queue_ptr + keys.shape[0]) % queue.shape[0]


def initial_queue(key: jax.Array, size: int = QUEUE_SIZE, dim: int = EMBED_DIM) -> jax.Array:
    """Random unit rows, like the reference's `normalize(randn(dim, K), dim=0)`. [K, D] float32."""
    return l2_normalize(jax.random.normal(key, (size, dim), jnp.float32))
