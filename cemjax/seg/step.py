"""Fine-tuning state and the pure, jitted update `train_step(state, batch, key) -> (state, metrics)`.

One step = the reference's one batch: on-device augmentation of host crops (docs/method.md §4), the
UNet in train mode, BCE-with-logits for one class or weighted cross-entropy otherwise, and AdamW + one-cycle on
the trainable parameters only (frozen ones are left bit-identical: no decay, no Adam state).

Frozen encoder BatchNorm: the reference keeps the whole model in train mode, so the running statistics of a
frozen encoder still move (`frozen_bn_stats="update"`, the default); `"fixed"` puts the frozen blocks in eval
mode instead (running statistics used and kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from cemjax.data.augment_seg import seg_augment
from cemjax.seg.losses import bce_with_logits, weighted_cross_entropy


@flax.struct.dataclass
class SegState:
    """Everything a fine-tuning run needs to continue exactly."""

    step: jax.Array
    params: Any
    stats: Any
    opt_state: Any


def init_state(model: nnx.Module, tx: optax.GradientTransformation) -> tuple[Any, SegState]:
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    return graphdef, SegState(jnp.zeros((), jnp.int32), params, stats, tx.init(params))


def model_from_state(graphdef, state: SegState) -> nnx.Module:
    return nnx.merge(graphdef, state.params, state.stats)


def normalise(x: jax.Array, norms) -> jax.Array:
    """x float [B, H, W, 1] in [0, 1] → [B, H, W, C] with C = len(mean): (x − mean_c) / std_c per channel
    (a gray image is repeated for 3-channel ImageNet encoders, as the reference does)."""
    mean = jnp.asarray(norms[0], jnp.float32)
    std = jnp.asarray(norms[1], jnp.float32)
    return (x - mean) / std


def segmentation_loss(
    logits: jax.Array, mask: jax.Array, class_weights: tuple[float, ...], ignore_label: int | None = None
) -> jax.Array:
    """logits [B, H, W, C], mask uint8 [B, H, W, 1] → scalar: BCE for C = 1, weighted CE otherwise. Pixels whose
    mask is `ignore_label` (unlabelled) do not count."""
    labelled = None if ignore_label is None else mask != ignore_label
    if logits.shape[-1] == 1:
        target = mask if labelled is None else jnp.where(labelled, mask, 0)
        return bce_with_logits(logits, target, labelled)
    weights = jnp.asarray(class_weights, jnp.float32) if class_weights else None
    return weighted_cross_entropy(
        logits, mask[..., 0].astype(jnp.int32), weights, None if labelled is None else labelled[..., 0]
    )


def foreground_iou(logits: jax.Array, mask: jax.Array, ignore_label: int | None = None) -> jax.Array:
    """Batch IoU of 'any foreground class' (a cheap training signal, not the benchmark metric), over labelled
    pixels (mask != ignore_label)."""
    pred = logits[..., 0] > 0 if logits.shape[-1] == 1 else jnp.argmax(logits, -1) > 0
    truth = mask[..., 0] > 0
    if ignore_label is not None:
        labelled = mask[..., 0] != ignore_label
        pred, truth = pred & labelled, truth & labelled
    inter = jnp.sum(pred & truth)
    union = jnp.sum(pred | truth)
    return (inter + 1e-5) / (union + 1e-5)


def masked_tx(tx: optax.GradientTransformation, trainable_mask) -> optax.GradientTransformation:
    """`tx` on trainable leaves; frozen leaves get a zero update and carry no optimizer state."""
    labels = jax.tree.map(lambda t: "train" if t else "frozen", trainable_mask)
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def make_train_step(
    graphdef,
    tx: optax.GradientTransformation,
    lr_fn: Callable[[jax.Array], jax.Array],
    *,
    crop: int,
    norms,
    class_weights: tuple[float, ...] = (),
    noise_blur: bool = False,
    nonempty: bool = False,
    fixed_bn_blocks: tuple[str, ...] = (),
    ignore_label: int | None = None,
):
    """The update as a pure function; jit it with shardings and donate the state. `fixed_bn_blocks` names
    encoder blocks (the encoder's `BLOCKS`) whose BatchNorm runs in eval mode; mask pixels equal to
    `ignore_label` are unlabelled (no loss)."""
    norms = (tuple(norms[0]), tuple(norms[1]))

    def train_step(state: SegState, batch: dict, key: jax.Array):
        """batch: {"image", "mask": uint8 [B, C, C, 1], "valid": int32 [B, 2]} (global batch) → (state, metrics)."""
        step_key = jax.random.fold_in(key, state.step)
        images, masks = seg_augment(
            batch["image"], batch["mask"], step_key, batch["valid"], size=crop, noise_blur=noise_blur,
            nonempty=nonempty,
        )  # fmt: skip
        x = normalise(images, norms)

        def loss_fn(params):
            model = nnx.merge(graphdef, params, state.stats, copy=True)
            model.train()
            for name in fixed_bn_blocks:
                getattr(model.encoder, name).eval()
            logits = model(x)
            loss = segmentation_loss(logits, masks, class_weights, ignore_label)
            return loss, (nnx.state(model, nnx.BatchStat), logits)

        (loss, (stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = SegState(state.step + 1, optax.apply_updates(state.params, updates), stats, opt_state)
        metrics = {
            "loss": loss,
            "fg_iou": foreground_iou(logits, masks, ignore_label),
            "lr": lr_fn(state.step),
            "update_norm": optax.tree.norm(updates),
        }
        return new_state, metrics

    return train_step


def make_predict_fn(graphdef, state: SegState, norms) -> Callable[[jax.Array], jax.Array]:
    """`predict(x float32 [B, H, W, 1] in [0, 1]) -> logits float32 [B, H, W, C]`, eval mode, jitted (one
    compile per input shape)."""
    model = model_from_state(graphdef, jax.device_get(state))
    model.eval()
    graph, variables = nnx.split(model)
    norms = (tuple(norms[0]), tuple(norms[1]))

    @jax.jit
    def predict(variables, x):
        net = nnx.merge(graph, variables, copy=True)
        return net(normalise(x, norms)).astype(jnp.float32)

    return lambda x: predict(variables, jnp.asarray(x, jnp.float32))
