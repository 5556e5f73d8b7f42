"""What every trainer shares around its step: joining the run (processes, mesh), the jitted step with its
shardings, the config record, placing state on the mesh, SIGTERM as a flag, start-or-resume and the step loop."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from cemjax.common.config_checks import check_config
from cemjax.common.errors import DivergedError
from cemjax.common.files import write_json
from cemjax.convert.files import TORCH_EXTRA, torch_available
from cemjax.train import checkpointing
from cemjax.train import mesh as mesh_lib

CONFIG_FILE = "config.json"


def start_run(config) -> tuple[jax.sharding.Mesh, bool]:
    """Join a multi-process run if the config says so and make the data mesh. → (mesh, is_lead). Nothing is
    written yet: a trainer opens its data before the workdir is created, so bad input leaves no workdir. Says
    at once what the run's exports will lack (PyTorch files without torch). Every numeric field's type and range
    is checked first (one line naming each bad field)."""
    check_config(config)
    mesh_lib.maybe_initialize_distributed(
        config.distributed.coordinator or None, config.distributed.num_processes, config.distributed.process_id
    )
    is_lead = jax.process_index() == 0
    if is_lead and not torch_available():
        print(f"note: PyTorch is not installed, so the exports will be .safetensors only ({TORCH_EXTRA} adds "
              f"the .pth files)", flush=True)  # fmt: skip
    return mesh_lib.make_data_mesh(config.mesh.num_devices), is_lead


def jit_step(step_fn: Callable, mesh, state_shardings):
    """`step_fn(state, batch, key) -> (state, metrics)` jitted: state on `state_shardings` and donated, the batch
    split along the data axis, key and metrics replicated."""
    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, mesh_lib.data_sharding(mesh), mesh_lib.replicated(mesh)),
        out_shardings=(state_shardings, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )


def record_config(workdir: str, config, *, is_lead: bool, **resolved) -> dict:
    """The config as a plain dict with `resolved` (values computed at start: steps per epoch, norms, …) under
    "resolved"; the lead process writes it to `workdir/config.json` (what export and fine-tuning read back)."""
    config_dict = json.loads(config.to_json_best_effort())
    config_dict["resolved"] = json.loads(json.dumps(resolved, default=str))
    if is_lead:
        write_json(os.path.join(workdir, CONFIG_FILE), config_dict)
    return config_dict


def read_config(workdir: str) -> dict:
    """`workdir/config.json` as written by `record_config`; FileNotFoundError naming the folder otherwise."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{workdir}: no {CONFIG_FILE}, so not a cemjax training workdir")
    with open(path) as f:
        return json.load(f)


def saved_config(workdir: str):
    """(the run's config as a ConfigDict, its "resolved" values) from `workdir/config.json`."""
    import ml_collections  # here: importing the jitted steps must not need ml_collections

    saved = read_config(workdir)
    resolved = saved.pop("resolved", {})
    return ml_collections.ConfigDict(saved), resolved


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


class NonFiniteLossError(DivergedError):
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
    after_step: Callable[[int, Any], bool] | None = None,
    probe: Callable[[Any], dict[str, float]] | None = None,
    probe_every: int = 0,
):
    """The loop every trainer runs: `state, metrics = step_fn(state, next_batch(), key)` from `start` to
    `total`, logging every `config.log_every`, saving every `config.checkpoint_every` (and at the end or on
    SIGTERM, then stopping). Before a save the state itself is checked (one reduction on device): a
    non-finite loss or state raises NonFiniteLossError and nothing is saved, so the latest checkpoint is always
    a finite one, and so is what the trainer exports after the last step. `after_step(step, state)`
    (validation) runs after each step; True stops the loop there, after a save. `probe(state)` (scalars named
    `probe/...`), when given, runs every `probe_every` steps, at the end and at step 0 of a fresh run; its
    scalars join that step's log line. Returns (state, step, last metrics)."""
    preemption = Preemption()
    last, step = {}, start
    if probe is not None and start == 0:
        writer.write(0, probe(state))

    def diverged(what: str) -> NonFiniteLossError:
        return NonFiniteLossError(
            f"{what} at step {step}; stopped without saving. The last good checkpoint is step "
            f"{manager.latest_step()} in {workdir}/checkpoints (lower {lr_field} and resume)."
        )

    try:
        while step < total:
            state, metrics = step_fn(state, next_batch(), key)
            step += 1
            stop = preemption.requested  # read once: a signal arriving later is handled next step
            done_early = after_step is not None and bool(after_step(step, state))
            due_probe = probe is not None and (step % probe_every == 0 or step == total)
            due_log = step % config.log_every == 0 or step == total or done_early or due_probe
            due_save = step % config.checkpoint_every == 0 or step == total or stop or done_early
            if due_log or due_save:
                last = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not np.isfinite(last["loss"]):
                    raise diverged(f"loss is {last['loss']}")
                if due_probe:
                    last.update(probe(state))
                if due_log:
                    writer.write(step, last, images_per_step=config.batch_size)
            if due_save:
                bad = int(np.asarray(jax.device_get(checkpointing.count_non_finite(state))))
                if bad:
                    raise diverged(f"{bad} array(s) of the state are non-finite after the update")
                checkpointing.save(manager, step, state, data_iterator, config_dict, force=True)
            if stop:
                if jax.process_index() == 0:
                    print(f"SIGTERM: saved step {step}; exiting", flush=True)
                break
            if done_early:
                break
    finally:
        manager.wait_until_finished()
    return state, step, last


def start_or_resume(config, workdir: str, host_state, shardings, data_iterator):
    """The workdir's checkpoint manager and the state to start from: the latest checkpoint (restored onto
    `shardings`, with the data iterator) or `host_state` placed on the mesh. → (manager, state, start step)."""
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
