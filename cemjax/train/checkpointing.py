"""Orbax checkpoints of a run: train state + grain iterator state (per process) + the config, saved together.

Restores go into abstract arrays that carry the *current* mesh's shardings, so a run saved on 8 devices
resumes on 4 (or on a pod slice of another shape).
"""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp


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
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        config=ocp.args.JsonSave(config),
    )
    return manager.save(step, args=args, force=force)


def abstract_like(state, shardings):
    """ShapeDtypeStructs of `state` carrying `shardings` (the restore target)."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)


def restore_latest(manager: ocp.CheckpointManager, abstract_state, data_iterator):
    """(state, step) from the newest checkpoint, also restoring `data_iterator` in place; None if there is none."""
    step = manager.latest_step()
    if step is None:
        return None
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(data_iterator),
        ),
    )
    return restored["state"], step


def restore_saved_state(workdir: str, template, step: int | None = None):
    """A saved train state of `workdir` on the host: (state shaped like `template`, its step); the latest
    step when `step` is None. For export and fine-tuning, not for resuming (the data iterator is not read)."""
    manager = make_manager(os.path.join(workdir, "checkpoints"), every=1, keep=1, async_save=False)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint yet")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), template)
    return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"], step
