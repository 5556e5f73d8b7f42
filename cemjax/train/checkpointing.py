"""Orbax checkpoints of a run: train state + grain iterator state (per process) + the config, saved together.

Restores go into abstract arrays that carry the *current* mesh's shardings, so a run saved on 8 devices
resumes on 4 (or on a pod slice of another shape). A checkpoint that does not restore (truncated or flipped
files, missing metadata, an empty step folder) or holds non-finite values is moved aside to
`checkpoints/unreadable/` — never deleted — with a line saying which and why, and the next older one is tried.
A checkpoint of another model (other shapes) is not corruption: that stops with one line naming the first
differing array.
"""

from __future__ import annotations

import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from cemjax.common.errors import ConfigError, InputError, one_line

UNREADABLE = "unreadable"


def make_manager(directory: str, *, every: int, keep: int, async_save: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=every,
        max_to_keep=keep,
        enable_async_checkpointing=async_save,
        create=True,
    )
    path = directory if "://" in directory else os.path.abspath(directory)
    return ocp.CheckpointManager(path, options=options, item_names=("state", "data", "config"))


def save(manager: ocp.CheckpointManager, step: int, state, data_iterator, config: dict, *, force: bool = False) -> bool:
    """Save if `step` is on the interval (or `force`); returns whether a save started."""
    import grain  # here, not at the top: the jitted steps (cemjax.train.loop) must import without grain

    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        config=ocp.args.JsonSave(config),
    )
    return manager.save(step, args=args, force=force)


def abstract_like(state, shardings):
    """ShapeDtypeStructs of `state` carrying `shardings` (the restore target)."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)


@jax.jit
def count_non_finite(state) -> jax.Array:
    """How many floating-point leaves of `state` hold a NaN or an infinity (0 for a healthy state)."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return sum((~jnp.all(jnp.isfinite(x))).astype(jnp.int32) for x in leaves) if leaves else jnp.int32(0)


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _shapes(tree) -> dict[str, tuple]:
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))[0]
    return {_path_name(p): tuple(getattr(x, "shape", ())) for p, x in leaves}


def check_same_model(manager: ocp.CheckpointManager, step: int, abstract_state) -> None:
    """ConfigError when checkpoint `step` holds arrays of other shapes than this run's state (another model or
    recipe in the same workdir); unreadable metadata is left to the restore to report."""
    try:
        saved = _shapes(manager.item_metadata(step)["state"].tree)
    except Exception:  # noqa: BLE001  (corrupt metadata: the restore attempt says what is wrong)
        return
    current = _shapes(abstract_state)
    for name, shape in current.items():
        if name in saved and tuple(saved[name]) != shape:
            raise ConfigError(
                f"{manager.directory} holds a run of another model or recipe: {name} is {tuple(saved[name])} there, "
                f"{shape} in this config; use a new --workdir, or the config that run was started with"
            )
    if len(saved) != len(current):
        raise ConfigError(f"{manager.directory} holds a run with {len(saved)} arrays, this config has {len(current)}: "
                          "use a new --workdir, or the config that run was started with")  # fmt: skip


def _set_aside(manager: ocp.CheckpointManager, step: int, reason: str) -> str:
    """Move step `step`'s folder to checkpoints/unreadable/<step>-<time> (the lead process; all wait)."""
    root = str(manager.directory)
    target = os.path.join(root, UNREADABLE, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    if jax.process_index() == 0:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(os.path.join(root, str(step))):
            shutil.move(os.path.join(root, str(step)), target)
        print(f"checkpoint step {step} in {root} does not restore ({reason}); moved to {target}, trying an older one",
              flush=True)  # fmt: skip
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"cemjax-set-aside-{step}")
    manager.reload()
    return target


def restore_latest(manager: ocp.CheckpointManager, abstract_state, data_iterator):
    """(state, step) from the newest checkpoint that restores and is finite, also restoring `data_iterator`;
    None if there is no checkpoint. InputError if there were some and none restores (they are set aside, so
    the next run starts afresh on purpose); ConfigError if they belong to another model."""
    import grain  # see `save`

    steps = sorted(manager.all_steps(), reverse=True)
    moved = []
    for step in steps:
        check_same_model(manager, step, abstract_state)
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state),
                    data=grain.checkpoint.CheckpointRestore(data_iterator),
                ),
            )
            bad = int(np.asarray(jax.device_get(count_non_finite(restored["state"]))))
            if bad:
                raise ValueError(f"{bad} array(s) hold non-finite values")
            return restored["state"], step
        except Exception as err:  # noqa: BLE001  (any way a checkpoint can fail to restore: try an older one)
            moved.append(_set_aside(manager, step, one_line(err)[:300]))
    if moved:
        where = os.path.dirname(moved[0])
        raise InputError(f"no checkpoint in {manager.directory} restores; they were moved to {where}; run again to "
                         "start afresh in this workdir")  # fmt: skip
    return None


def restore_saved_state(workdir: str, template, step: int | None = None):
    """A saved train state of `workdir` on the host: (state shaped like `template`, its step); the latest
    step when `step` is None. For export and fine-tuning, not for resuming (the data iterator is not read)."""
    manager = make_manager(os.path.join(workdir, "checkpoints"), every=1, keep=1, async_save=False)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint yet")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), template)
    return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"], step
