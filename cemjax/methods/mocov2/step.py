"""MoCoV2 train state and the pure, jitted update `train_step(state, batch, key) -> (state, metrics)`.

Shuffle-BN (docs/method.md §2): MoCo computes BN statistics per GPU and feeds the key encoder a
*shuffled* batch so the key's BN never sees the query's sub-batch grouping (otherwise the statistics leak which
sample is the positive). Here the batch is split into `bn_groups` groups with their own statistics — exactly what G GPUs
under DDP do — independent of how many devices run it, so results do not change with the mesh. Keys are
encoded in a random permutation and un-permuted afterwards. `bn_mode="sync"` instead uses whole-global-batch
statistics for both encoders (SyncBN, SimCLR's alternative), with no shuffle.

`bn_mode="shard_map"` is MoCo's per-device shuffle-BN done literally: both encoders' forward passes run inside
`jax.shard_map` over the mesh's `data` axis, so each device normalises with the statistics of its own sub-batch
(one BN group, no `axis_name`), and the groups are the devices (`bn_groups` is ignored). The key shuffle is the
same global permutation as in "shuffle" mode, drawn from the same key and applied to the global batch *outside*
the shard_map (XLA lowers the gather to cross-device collectives, as `_batch_shuffle_ddp`'s all-gather does);
device d then encodes rows d·B/D … (d+1)·B/D − 1 of the permuted batch, and the keys are un-permuted outside
again. Running statistics are `pmean`-ed over devices so the state stays replicated (= "shuffle" mode's mean
over groups). With the same key, "shard_map" on D devices and "shuffle" with `bn_groups=D` compute the same step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from cemjax.methods.mocov2 import loss as mocov2
from cemjax.methods.mocov2.data import mocov2_views
from cemjax.models.layers import set_batchnorm_groups
from cemjax.models.registry import build_encoder
from cemjax.train.mesh import DATA

BN_MODES = ("shuffle", "sync", "shard_map")


@flax.struct.dataclass
class MoCoState:
    """Everything a MoCo run needs to continue exactly: both encoders, optimizer, queue [K, D], pointer."""

    step: jax.Array
    params_q: Any
    stats_q: Any
    params_k: Any
    stats_k: Any
    opt_state: Any
    queue: jax.Array
    queue_ptr: jax.Array


def query_encoder(model_config, seed: int) -> nnx.Module:
    """The encoder of `config.model` with MoCoV2's MLP head (`fc.0`, `fc.2`) of `embed_dim` outputs."""
    m = model_config
    return build_encoder(m.encoder, in_channels=m.in_channels, head="mlp", num_classes=m.embed_dim,
                         dtype=m.compute_dtype, rngs=nnx.Rngs(seed))  # fmt: skip


def sgd_with_weight_decay(lr: Callable[[jax.Array], jax.Array], momentum: float, weight_decay: float):
    """torch.optim.SGD(lr, momentum, weight_decay): d = g + wd·θ; buf = μ·buf + d; θ -= lr·buf."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(lr, momentum=momentum))


def init_state(encoder: nnx.Module, tx: optax.GradientTransformation, queue_size: int, embed_dim: int, seed: int):
    """(graphdef, MoCoState): the key encoder starts as a copy of the query encoder, as in the reference."""
    graphdef, params, stats = nnx.split(encoder, nnx.Param, nnx.BatchStat)
    copy = lambda tree: jax.tree.map(jnp.array, tree)  # noqa: E731
    state = MoCoState(
        step=jnp.zeros((), jnp.int32),
        params_q=params,
        stats_q=stats,
        params_k=copy(params),
        stats_k=copy(stats),
        opt_state=tx.init(params),
        queue=mocov2.initial_queue(jax.random.key(seed + 1), queue_size, embed_dim),
        queue_ptr=jnp.zeros((), jnp.int32),
    )
    return graphdef, state


def make_train_step(
    graphdef,
    tx: optax.GradientTransformation,
    lr_fn: Callable[[jax.Array], jax.Array],
    *,
    momentum: float,
    temperature: float,
    bn_mode: str,
    bn_groups: int,
    image_size: int,
    norms: tuple[float, float],
    views_fn: Callable = mocov2_views,
    mesh: jax.sharding.Mesh | None = None,
):
    """The update as a pure function; jit it with shardings and donate the state. `views_fn(images, key, valid,
    size=, mean=, std=) -> (view_q, view_k)` is the on-device augmentation (replaceable for benchmarks). `mesh` (with a
    `data` axis) is needed by `bn_mode="shard_map"` only, whose BN groups are that axis's devices; the global
    batch must then divide by their number."""
    if bn_mode not in BN_MODES:
        raise ValueError(f"moco.bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
    if bn_mode == "shard_map" and (mesh is None or DATA not in mesh.axis_names):
        raise ValueError(f"moco.bn_mode='shard_map' needs make_train_step(..., mesh=) with a {DATA!r} axis, got {mesh}")
    groups = bn_groups if bn_mode == "shuffle" else 1

    def embed(params, stats, views):
        model = nnx.merge(graphdef, params, stats, copy=True)  # fresh Variables at this trace level
        set_batchnorm_groups(model, groups)
        model.train()
        out = mocov2.l2_normalize(model(views))
        return out, nnx.state(model, nnx.BatchStat)

    def embed_per_device(params, stats, views):
        """`embed` with each device's BN statistics from its own rows of `views` [B, ...] (sharded on `data`);
        parameters in, running statistics out replicated (averaged over devices). Differentiable."""

        def local(params, stats, views):
            out, new_stats = embed(params, stats, views)
            mean = lambda s: jax.lax.pmean(s, DATA) if jnp.issubdtype(s.dtype, jnp.inexact) else s  # noqa: E731
            return out, jax.tree.map(mean, new_stats)  # integer counters are identical on every device

        spec = jax.P(DATA)
        return jax.shard_map(local, mesh=mesh, in_specs=(jax.P(), jax.P(), spec), out_specs=(spec, jax.P()))(
            params, stats, views
        )

    encode = embed_per_device if bn_mode == "shard_map" else embed

    def train_step(state: MoCoState, batch: dict, key: jax.Array):
        """batch: {"image": uint8 [B, H, W, 1] canvases, "valid": int32 [B, 2] true sizes} (the global batch);
        key: the run's base key. → (state, metrics)."""
        images = batch["image"]
        step_key = jax.random.fold_in(key, state.step)
        aug_key, shuffle_key = jax.random.split(step_key)
        view_q, view_k = views_fn(images, aug_key, batch.get("valid"), size=image_size, mean=norms[0], std=norms[1])

        params_k = mocov2.momentum_update(state.params_k, state.params_q, momentum)
        if bn_mode in ("shuffle", "shard_map"):  # the same draw in both: group / device g gets rows g·B/G …
            order = jax.random.permutation(shuffle_key, images.shape[0])
            shuffled, stats_k = encode(params_k, state.stats_k, view_k[order])
            k = jnp.zeros_like(shuffled).at[order].set(shuffled)
        else:
            k, stats_k = embed(params_k, state.stats_k, view_k)
        k = jax.lax.stop_gradient(k)

        def loss_fn(params_q):
            q, stats_q = encode(params_q, state.stats_q, view_q)
            loss, top1 = mocov2.info_nce(mocov2.contrastive_logits(q, k, state.queue, temperature))
            return loss, (stats_q, top1)

        (loss, (stats_q, top1)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params_q)
        updates, opt_state = tx.update(grads, state.opt_state, state.params_q)
        queue, queue_ptr = mocov2.enqueue(state.queue, state.queue_ptr, k)
        new_state = MoCoState(
            step=state.step + 1,
            params_q=optax.apply_updates(state.params_q, updates),
            stats_q=stats_q,
            params_k=params_k,
            stats_k=stats_k,
            opt_state=opt_state,
            queue=queue,
            queue_ptr=queue_ptr,
        )
        metrics = {"loss": loss, "top1": top1, "lr": lr_fn(state.step), "grad_norm": optax.tree.norm(grads)}
        return new_state, metrics

    return train_step


def encoders_from_state(graphdef, state: MoCoState) -> tuple[nnx.Module, nnx.Module]:
    """(encoder_q, encoder_k) as modules, e.g. for export."""
    return nnx.merge(graphdef, state.params_q, state.stats_q), nnx.merge(graphdef, state.params_k, state.stats_k)
