"""The pretraining run every method shares, top to bottom: `run_pretraining(config, workdir, validate=, setup=)`.

A method (`cemjax/methods/<name>/trainer.py`) supplies only what is its own — the config checks and a
`MethodSetup`: the initial train state, the pure step, how to read the encoder out of the state and how to
export it. Everything else happens here, the same for every method: processes and the data mesh, the grain
loader (source-balanced when `data.balance_gamma` > 0), start or exact resume from the workdir's Orbax
checkpoints, the jitted sharded step with a donated state, TensorBoard / progress / metrics.jsonl, the online
probes (`probe.every`), the loss curve and the exports at the end.

Resume is exact: all randomness is a function of (seed, step), and a checkpoint holds the train state, the
grain iterator state of every process and the config. SIGTERM saves and exits cleanly; a non-finite loss stops
the run before anything is saved, so the last checkpoint is the last good one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from cemjax.data.canvas import on_canvas
from cemjax.data.pretrain import make_loader
from cemjax.train import mesh as mesh_lib
from cemjax.train.loop import jit_step, record_config, run_steps, start_or_resume, start_run
from cemjax.train.metrics import MetricWriter, plot_curves
from cemjax.train.probe import make_online_probe


@dataclasses.dataclass(frozen=True)
class MethodSetup:
    """What a method gives the shared run.

    graphdef: the nnx graph of the trained module(s); host_state: the initial train state (a pytree with a
    `step` field) on the host; step_fn: the pure update `(state, batch, key) -> (state, metrics)`, metrics
    holding at least "loss"; encoder: state → the encoder module (a pretraining head, if any, is unused by
    the probes); export: (state on the host, out_dir, epoch) → {name: path}; views: (uint8 canvases
    [N, H, W, 1], true sizes int32 [N, 2]) → uint8 [N, V, S, S] view tiles for TensorBoard, or None;
    curves: the metrics drawn in loss_curve.png.
    """

    graphdef: Any
    host_state: Any
    step_fn: Callable
    encoder: Callable[[Any], nnx.Module]
    export: Callable[[Any, str, int], dict[str, str]]
    views: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    views_tag: str = "augment/views"
    curves: tuple[str, ...] = ("loss", "lr")
    lr_field: str = "optim.base_lr"


def run_pretraining(config, workdir: str, *, validate: Callable[[Any, int], None],
                    setup: Callable[[Any, int, jax.sharding.Mesh], MethodSetup]) -> dict:  # fmt: skip
    """Run (or resume) pretraining; `validate(config, num_devices)` raises one-line errors, `setup(config,
    steps_per_epoch, mesh)` builds the method. Returns the last logged metrics, the final state and graphdef,
    and the output paths (`loss_curve`, `exports`)."""
    mesh, is_lead = start_run(config)
    validate(config, mesh.shape[mesh_lib.DATA])

    loader, source = make_loader(config, process_index=jax.process_index(), process_count=jax.process_count())
    steps_per_epoch = config.steps_per_epoch or max(1, len(source) // config.batch_size)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    data_iterator = iter(loader)

    method = setup(config, steps_per_epoch, mesh)
    shardings = mesh_lib.state_shardings(method.host_state, mesh, config.mesh.param_sharding)
    manager, state, start = start_or_resume(config, workdir, method.host_state, shardings, data_iterator)
    method = dataclasses.replace(method, host_state=None)  # free the host copy
    step_fn = jit_step(method.step_fn, mesh, shardings)
    config_dict = record_config(workdir, config, is_lead=is_lead, steps_per_epoch=steps_per_epoch)
    probe = make_online_probe(config, mesh)

    writer = MetricWriter(workdir, total_steps=total_steps, start_step=start, enabled=is_lead)
    writer.write_config(config_dict)
    if is_lead and start == 0 and method.views is not None:  # what the encoder sees: 4 patches, their views
        canvas, valid = on_canvas([source[int(i)]["image"] for i in np.linspace(0, len(source) - 1, 4)])
        views = method.views(canvas, valid)
        writer.write_images(method.views_tag, views.reshape(-1, *views.shape[2:]), 0)
    try:
        state, step, last = run_steps(
            state, step_fn=step_fn, next_batch=lambda: mesh_lib.global_batches(mesh, next(data_iterator)),
            key=jax.random.key(config.seed), start=start, total=total_steps, manager=manager,
            data_iterator=data_iterator, config=config, config_dict=config_dict, writer=writer, workdir=workdir,
            lr_field=method.lr_field, probe=None if probe is None else (lambda s: probe(method.encoder(s))),
            probe_every=config.probe.every if probe is not None else 0,
        )  # fmt: skip
    finally:
        writer.close()

    outputs = {"workdir": workdir, "step": step, "metrics": last, "state": state, "graphdef": method.graphdef}
    if is_lead and step == total_steps:
        outputs["loss_curve"] = plot_curves(workdir, keys=(*method.curves, "probe/knn", "probe/linear"))
        if config.export_at_end:
            outputs["exports"] = method.export(
                jax.device_get(state), os.path.join(workdir, "export"), step // steps_per_epoch
            )
    return outputs
