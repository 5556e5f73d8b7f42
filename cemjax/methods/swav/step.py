"""SwAV train state and the pure, jitted update `train_step(state, batch, key) -> (state, metrics)`.

One step, as the reference's `train` loop does it: normalise the prototypes; render the multi-crop views on
device; embed every view (one encoder pass per resolution, global batch statistics — the reference's SyncBN);
codes of the assigned views by Sinkhorn (over the queue's rows too once the queue is full); the swapped
prediction loss; gradients, with the prototypes' zeroed for the first `freeze_prototypes_steps` steps (the
reference drops them, which leaves LARC + SGD with nothing to do for that tensor either); LARC + SGD; the
assigned views' embeddings pushed onto the queue from `queue_start_step` on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from cemjax.methods.swav import loss as swav
from cemjax.methods.swav.data import MultiCrop, multicrop_views
from cemjax.methods.swav.model import SwAVModel

PROTOTYPES = "prototypes"


@flax.struct.dataclass
class SwAVState:
    """Everything a SwAV run needs to continue exactly: the network, optimizer, queue [A, L, D] (None without a
    queue: a zero-size array cannot be checkpointed)."""

    step: jax.Array
    params: Any
    stats: Any
    opt_state: Any
    queue: jax.Array | None


def build_model(model_config, swav_config, seed: int) -> SwAVModel:
    m, s = model_config, swav_config
    return SwAVModel(m.encoder, in_channels=m.in_channels, hidden=s.hidden_mlp, out_features=s.feat_dim,
                     num_prototypes=s.num_prototypes, dtype=m.compute_dtype, rngs=nnx.Rngs(seed))  # fmt: skip


def init_state(model: SwAVModel, tx: optax.GradientTransformation, queue_length: int, num_assigned: int):
    """(graphdef, SwAVState) with an all-zero queue of `queue_length` rows per assigned view (0: None, no queue)."""
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    dim = model.prototypes.in_features
    state = SwAVState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        stats=stats,
        opt_state=tx.init(params),
        queue=jnp.zeros((num_assigned, queue_length, dim), jnp.float32) if queue_length else None,
    )
    return graphdef, state


def _on_prototypes(tree, fn):
    """Apply `fn` to the prototype kernel of a params-shaped tree, leave every other leaf."""
    return jax.tree_util.tree_map_with_path(lambda path, x: fn(x) if path[0].key == PROTOTYPES else x, tree)


def make_train_step(
    graphdef,
    tx: optax.GradientTransformation,
    lr_fn: Callable[[jax.Array], jax.Array],
    *,
    crops: MultiCrop,
    norms: tuple[float, float],
    crops_for_assign: tuple[int, ...] = (0, 1),
    temperature: float = swav.TEMPERATURE,
    epsilon: float = swav.EPSILON,
    sinkhorn_iterations: int = swav.SINKHORN_ITERATIONS,
    freeze_prototypes_steps: int = 0,
    queue_start_step: int = 0,
    views_fn: Callable = multicrop_views,
):
    """The update as a pure function; jit it with shardings and donate the state. `views_fn(images, key, valid,
    crops=, mean=, std=)` renders the crops (replaceable for benchmarks)."""

    def train_step(state: SwAVState, batch: dict, key: jax.Array):
        """batch: {"image": uint8 [B, H, W, 1] canvases, "valid": int32 [B, 2] true sizes} (the global batch);
        key: the run's base key. → (state, metrics)."""
        views = views_fn(batch["image"], jax.random.fold_in(key, state.step), batch.get("valid"), crops=crops,
                         mean=norms[0], std=norms[1])  # fmt: skip
        b = views[0].shape[0]
        params = _on_prototypes(state.params, swav.normalize_prototypes)
        use_queue = swav.queue_is_full(state.queue) if state.queue is not None else False

        def loss_fn(params):
            model = nnx.merge(graphdef, params, state.stats, copy=True)
            model.train()
            z, scores = model.embed(views)
            scores = scores.reshape(len(views), b, -1)
            kernel = jax.lax.stop_gradient(model.prototypes.kernel[...])
            queue_scores = None
            if state.queue is not None:
                queue_scores = jnp.einsum("ald,dk->alk", state.queue, kernel, precision=jax.lax.Precision.HIGHEST)
            codes = swav.assignments(scores, crops_for_assign, epsilon, sinkhorn_iterations, queue_scores, use_queue)
            loss = swav.swapped_prediction_loss(scores, codes, crops_for_assign, temperature)
            return loss, (nnx.state(model, nnx.BatchStat), z.reshape(len(views), b, -1))

        (loss, (stats, z)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        trainable = (state.step >= freeze_prototypes_steps).astype(jnp.float32)
        grads = _on_prototypes(grads, lambda g: g * trainable)
        updates, opt_state = tx.update(grads, state.opt_state, params)
        queue = state.queue
        if queue is not None:
            pushed = swav.enqueue(queue, z[jnp.asarray(crops_for_assign)])
            queue = jnp.where(state.step >= queue_start_step, pushed, queue)
        new_state = SwAVState(step=state.step + 1, params=optax.apply_updates(params, updates), stats=stats,
                              opt_state=opt_state, queue=queue)  # fmt: skip
        metrics = {"loss": loss, "lr": lr_fn(state.step), "grad_norm": optax.tree.norm(grads),
                   "queue_used": jnp.asarray(use_queue, jnp.float32)}  # fmt: skip
        return new_state, metrics

    return train_step


def model_from_state(graphdef, state: SwAVState) -> SwAVModel:
    return nnx.merge(graphdef, state.params, state.stats)
