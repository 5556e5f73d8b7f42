"""Pieces every training loop here shares: SIGTERM as a flag, host state → global arrays, the device batch."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


class Preemption:
    """Turns SIGTERM into a flag the loop checks once per step (then saves and exits cleanly)."""

    def __init__(self):
        self.requested = False
        try:
            signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not in the main thread
            pass

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True


def place(state, shardings):
    """Host arrays (identical on every process) → global arrays with `shardings` (works multi-host)."""

    def put(x, s):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, s, lambda idx: x[idx])

    return jax.tree.map(put, state, shardings)


class NonFiniteLossError(RuntimeError):
    """Training diverged; the message names the step and where the last good checkpoint is."""


def run_steps(
    state,
    *,
    step_fn: Callable,
    next_batch: Callable[[], Any],
    key,
    start: int,
    total: int,
    manager,
    data_iterator,
    config,
    config_dict: dict,
    writer,
    workdir: str,
    lr_field: str,
):
    """The loop both trainers share: `state, metrics = step_fn(state, next_batch(), key)` from `start` to `total`,
    logging every `config.log_every`, saving every `config.checkpoint_every` (and at the end or on SIGTERM, then
    stopping), raising NonFiniteLossError before saving a non-finite loss. Returns (state, step, last metrics)."""
    from cemjax.train import checkpointing

    preemption = Preemption()
    last, step = {}, start
    try:
        while step < total:
            state, metrics = step_fn(state, next_batch(), key)
            step += 1
            stop = preemption.requested  # read once: a signal arriving later is handled next step
            due_log = step % config.log_every == 0 or step == total
            due_save = step % config.checkpoint_every == 0 or step == total or stop
            if due_log or due_save:
                last = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not np.isfinite(last["loss"]):
                    raise NonFiniteLossError(
                        f"loss is {last['loss']} at step {step}; stopped without saving. The last good checkpoint is "
                        f"step {manager.latest_step()} in {workdir}/checkpoints (lower {lr_field} and resume)."
                    )
                if due_log:
                    writer.write(step, last, images_per_step=config.batch_size)
            if due_save:
                checkpointing.save(manager, step, state, data_iterator, config_dict, force=True)
            if stop:
                if jax.process_index() == 0:
                    print(f"SIGTERM: saved step {step}; exiting", flush=True)
                break
    finally:
        manager.wait_until_finished()
    return state, step, last


def start_or_resume(config, workdir: str, host_state, shardings, data_iterator):
    """The workdir's checkpoint manager and the state to start from: the latest checkpoint (restored onto
    `shardings`, with the data iterator) or `host_state` placed on the mesh. → (manager, state, start step)."""
    from cemjax.train import checkpointing

    manager = checkpointing.make_manager(
        os.path.join(workdir, "checkpoints"), every=config.checkpoint_every, keep=config.keep_checkpoints,
        async_save=config.async_checkpointing,
    )  # fmt: skip
    restored = checkpointing.restore_latest(manager, checkpointing.abstract_like(host_state, shardings), data_iterator)
    if restored is None:
        return manager, place(host_state, shardings), 0
    if jax.process_index() == 0:
        print(f"resumed from step {restored[1]} in {workdir}", flush=True)
    return manager, *restored
