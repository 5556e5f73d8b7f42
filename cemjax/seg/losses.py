"""Fine-tuning losses (docs/method.md §4): BCE-with-logits for one class, weighted cross-entropy for several.

Both reduce like their PyTorch counterparts with default arguments (`reduction="mean"`) and compute in at least
float32 whatever the logits' dtype. Layout is channels-last: logits [B, H, W, C].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _at_least_float32(x: jax.Array) -> jax.Array:
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def bce_with_logits(logits: jax.Array, mask: jax.Array, labelled: jax.Array | None = None) -> jax.Array:
    """torch `nn.BCEWithLogitsLoss()`: mean over every element of −[y·log σ(x) + (1 − y)·log(1 − σ(x))].

    Args:
        logits: [B, H, W, 1] raw scores x (any float dtype).
        mask: targets y in [0, 1] (float, int or bool), shaped like `logits` or [B, H, W].
        labelled: optional bool, shaped like `mask`: the mean runs over these pixels only (unlabelled pixels
            add nothing; a batch without labelled pixels has loss 0). None: every pixel (torch's default).

    Returns:
        Scalar float32 (float64 for float64 logits): the mean loss in nats.
    """
    x = _at_least_float32(logits)
    y = jnp.asarray(mask)
    if y.ndim == x.ndim - 1:
        y = y[..., None]
    if y.shape != x.shape:
        raise ValueError(f"mask shape {y.shape} does not match logits shape {x.shape}")
    y = y.astype(x.dtype)
    # Stable form: max(x, 0) − x·y + log(1 + e^(−|x|)).
    loss = jnp.maximum(x, 0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x)))
    if labelled is None:
        return jnp.mean(loss)
    keep = jnp.asarray(labelled).reshape(loss.shape).astype(x.dtype)
    return jnp.sum(loss * keep) / jnp.maximum(jnp.sum(keep), 1.0)


def weighted_cross_entropy(
    logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None, labelled: jax.Array | None = None
) -> jax.Array:
    """torch `nn.CrossEntropyLoss(weight=weights)` with class dimension last.

    loss = Σ_p w[y_p] · (−log softmax(x_p)[y_p]) / Σ_p w[y_p] over all pixels p (plain mean when weights is None).

    Args:
        logits: [B, H, W, C] raw class scores.
        labels: int [B, H, W], class indices in [0, C) wherever `labelled`.
        weights: [C] per-class weights (Guay: [0.1, 0.1, 1, 1, 0.1, 3, 3]; UroCell: [0.1, 1, 1]) or None.
        labelled: optional bool [B, H, W]: pixels outside it have weight 0 (torch's ignore_index; their labels
            may hold any value). None: every pixel counts.

    Returns:
        Scalar float32 (float64 for float64 logits): the weighted mean loss in nats.
    """
    x = _at_least_float32(logits)
    labels = jnp.asarray(labels)
    if labels.shape != x.shape[:-1]:
        raise ValueError(f"labels shape {labels.shape} must be logits shape {x.shape} without the class axis")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    log_probs = jax.nn.log_softmax(x, axis=-1)
    if labelled is not None:
        labelled = jnp.asarray(labelled).reshape(labels.shape)
        labels = jnp.where(labelled, labels, 0)
    nll = -jnp.take_along_axis(log_probs, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    if weights is None and labelled is None:
        return jnp.mean(nll)
    w = jnp.ones(x.shape[-1:], x.dtype) if weights is None else jnp.asarray(weights, x.dtype)
    if w.shape != x.shape[-1:]:
        raise ValueError(f"weights shape {w.shape} must be ({x.shape[-1]},)")
    pixel_w = w[labels]
    if labelled is None:
        return jnp.sum(pixel_w * nll) / jnp.sum(pixel_w)
    pixel_w = pixel_w * labelled.astype(x.dtype)
    return jnp.sum(pixel_w * nll) / jnp.maximum(jnp.sum(pixel_w), jnp.finfo(x.dtype).tiny)
