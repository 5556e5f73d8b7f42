"""SwAV (Caron et al. 2020) as pure functions, with the numbers of the CEM1.5M recipe (docs/method.md §2.4).

Conventions: scores are prototype similarities of L2-normalised embeddings, rows = samples: [N, K]; views are
stacked first, [V, B, K] (view v of sample b); the queue holds past embeddings of the views that get
assignments, [A, L, D], newest first. The reference computes Sinkhorn over all GPUs with all-reduced sums;
here it runs once over the global batch, which is the same matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

TEMPERATURE = 0.1
EPSILON = 0.05
SINKHORN_ITERATIONS = 3


def sinkhorn(scores: jax.Array, epsilon: float = EPSILON, iterations: int = SINKHORN_ITERATIONS) -> jax.Array:
    """Equipartitioned soft assignments of N samples to K prototypes: float [N, K] → float32 [N, K], rows sum
    to 1. Q = exp(scores / ε)ᵀ scaled to sum 1; then `iterations` times: every prototype's row to total 1/K,
    every sample's column to total 1/N; finally columns × N. exp is taken of (scores − max) / ε, which the first
    scaling cancels exactly, so it cannot overflow."""
    s = jax.lax.stop_gradient(scores).astype(jnp.float32)
    q = jnp.exp((s - jnp.max(s)) / epsilon).T  # [K, N]
    k, n = q.shape
    q = q / jnp.sum(q)
    for _ in range(iterations):
        q = q / jnp.sum(q, axis=1, keepdims=True) / k
        q = q / jnp.sum(q, axis=0, keepdims=True) / n
    return (q * n).T


def assignments(scores: jax.Array, crops_for_assign: Sequence[int], epsilon: float = EPSILON,
                iterations: int = SINKHORN_ITERATIONS, queue_scores: jax.Array | None = None,
                use_queue: jax.Array | bool = False) -> jax.Array:  # fmt: skip
    """Codes of the views that get them: scores [V, B, K] → float32 [A, B, K], A = len(crops_for_assign).
    With `queue_scores` [A, L, K] and `use_queue` (traced or not), Sinkhorn of view a runs over the queue's L
    rows followed by the batch's B rows and the batch's rows are kept, as in the reference."""
    out = []
    for i, v in enumerate(crops_for_assign):
        batch = scores[v]
        if queue_scores is None or queue_scores.shape[1] == 0:
            out.append(sinkhorn(batch, epsilon, iterations))
            continue
        with_queue = lambda b, qs: sinkhorn(jnp.concatenate([qs, b]), epsilon, iterations)[-b.shape[0] :]  # noqa: E731
        without = lambda b, qs: sinkhorn(b, epsilon, iterations)  # noqa: E731
        out.append(jax.lax.cond(use_queue, with_queue, without, batch, queue_scores[i]))
    return jnp.stack(out)


def swapped_prediction_loss(scores: jax.Array, codes: jax.Array, crops_for_assign: Sequence[int],
                            temperature: float = TEMPERATURE) -> jax.Array:  # fmt: skip
    """The swapped prediction: every other view predicts the codes of view a. scores [V, B, K], codes [A, B, K]
    (no gradient) → float32 scalar: mean over a of the mean over v ≠ a of
    −mean_b Σ_k codes[a, b, k] · log_softmax(scores[v, b] / T)_k."""
    log_p = jax.nn.log_softmax(scores.astype(jnp.float32) / temperature, axis=-1)  # [V, B, K]
    codes = jax.lax.stop_gradient(codes)
    n_views = scores.shape[0]
    total = 0.0
    for i, a in enumerate(crops_for_assign):
        cross = -jnp.mean(jnp.sum(codes[i][None] * log_p, axis=-1), axis=-1)  # [V]: each view against codes a
        total = total + (jnp.sum(cross) - cross[a]) / (n_views - 1)
    return total / len(crops_for_assign)


def normalize_prototypes(kernel: jax.Array, eps: float = 1e-12) -> jax.Array:
    """Every prototype to unit length, as the reference does before each step: kernel [D, K] (columns are
    prototypes; torch's weight [K, D] normalised along dim 1)."""
    return kernel / jnp.maximum(jnp.linalg.norm(kernel, axis=0, keepdims=True), eps)


def enqueue(queue: jax.Array, embeddings: jax.Array) -> jax.Array:
    """queue [A, L, D], embeddings of this batch [A, B, D] → the queue shifted down by B rows with the batch on
    top (the reference's `queue[i, bs:] = queue[i, :-bs]; queue[i, :bs] = embedding`)."""
    embeddings = jax.lax.stop_gradient(embeddings).astype(queue.dtype)
    return jnp.concatenate([embeddings, queue[:, : queue.shape[1] - embeddings.shape[1]]], axis=1)


def queue_is_full(queue: jax.Array) -> jax.Array:
    """The reference's test for using the queue: its last row is no longer all zeros (embeddings are unit
    vectors, so a written row never is)."""
    return jnp.any(queue[0, -1] != 0)
