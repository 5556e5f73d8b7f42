"""MoCoV2 pretraining: `train(config, workdir)`, top to bottom. The update is `step.make_train_step`, pure and
jitted with shardings and a donated state; everything around it is shared with the other trainers
(`cemjax.train`).

Resume is exact: all randomness is a function of (seed, step), and the checkpoint holds the train state,
the grain iterator state of every process and the config. SIGTERM saves and exits cleanly; a non-finite
loss stops the run before anything is saved, so the last checkpoint is the last good one.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from cemjax.data.pretrain import make_loader
from cemjax.data.sources import on_canvas
from cemjax.methods.mocov2.data import view_tiles
from cemjax.methods.mocov2.export import export_pretrained
from cemjax.methods.mocov2.step import BN_MODES, init_state, make_train_step, query_encoder, sgd_with_weight_decay
from cemjax.train import mesh as mesh_lib
from cemjax.train.loop import jit_step, record_config, run_steps, start_or_resume, start_run
from cemjax.train.metrics import MetricWriter, plot_curves
from cemjax.train.schedules import moco_lr, scaled_lr


def validate(config, num_devices: int) -> None:
    """Clear, one-line errors for configurations that cannot run."""
    b = config.batch_size
    problems = []
    if b % num_devices:
        problems.append(f"batch_size={b} is not divisible by the {num_devices} devices of the mesh")
    if config.moco.queue_size % b:
        problems.append(f"moco.queue_size={config.moco.queue_size} must be a multiple of batch_size={b}")
    if config.moco.bn_mode not in BN_MODES:
        problems.append(f"moco.bn_mode={config.moco.bn_mode!r} must be one of {BN_MODES}")
    if config.moco.bn_mode == "shuffle" and (config.moco.bn_groups < 2 or b % config.moco.bn_groups):
        problems.append(f"moco.bn_groups={config.moco.bn_groups} must be ≥ 2 and divide batch_size={b}")
    if config.moco.bn_mode == "shard_map" and (b % num_devices or b // num_devices < 2):
        problems.append(
            f"moco.bn_mode='shard_map' takes BN statistics per device: batch_size={b} must split into ≥ 2 images "
            f"on each of the {num_devices} devices"
        )
    if problems:
        raise ValueError("invalid config: " + "; ".join(problems))


def train(config, workdir: str) -> dict:
    """Run (or resume) MoCoV2 pretraining; returns the last logged metrics and the output paths."""
    mesh, is_lead = start_run(config)
    validate(config, mesh.shape[mesh_lib.DATA])

    # ---------------------------------------------------------------- data
    loader, source = make_loader(config, process_index=jax.process_index(), process_count=jax.process_count())
    steps_per_epoch = config.steps_per_epoch or max(1, len(source) // config.batch_size)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    data_iterator = iter(loader)

    # ---------------------------------------------------------------- model, optimizer, state
    lr_fn = moco_lr(
        scaled_lr(config.optim.base_lr, config.batch_size),
        steps_per_epoch=steps_per_epoch,
        epochs=config.epochs,
        kind=config.optim.schedule,
        milestones=tuple(config.optim.milestones),
    )
    tx = sgd_with_weight_decay(lr_fn, config.optim.momentum, config.optim.weight_decay)
    graphdef, host_state = init_state(query_encoder(config.model, config.seed), tx, config.moco.queue_size,
                                      config.model.embed_dim, config.seed)  # fmt: skip
    shardings = mesh_lib.state_shardings(host_state, mesh, config.mesh.param_sharding)

    # ---------------------------------------------------------------- checkpoints: resume if any
    manager, state, start = start_or_resume(config, workdir, host_state, shardings, data_iterator)
    del host_state

    m = config.moco
    step_fn = jit_step(
        make_train_step(graphdef, tx, lr_fn, momentum=m.momentum, temperature=m.temperature, bn_mode=m.bn_mode,
                        bn_groups=m.bn_groups, image_size=config.image_size, norms=tuple(config.data.norms),
                        mesh=mesh),
        mesh, shardings,
    )  # fmt: skip
    config_dict = record_config(workdir, config, is_lead=is_lead, steps_per_epoch=steps_per_epoch)

    # ---------------------------------------------------------------- loop
    writer = MetricWriter(workdir, total_steps=total_steps, start_step=start, enabled=is_lead)
    writer.write_config(config_dict)
    if is_lead and start == 0:  # what the encoder sees: 4 patches, 4 views each
        canvas, valid = on_canvas([source[int(i)]["image"] for i in np.linspace(0, len(source) - 1, 4)])
        views = view_tiles(canvas, 4, config.seed, config.image_size, tuple(config.data.norms), valid)
        writer.write_images("augment/mocov2_views", views.reshape(-1, *views.shape[2:]), 0)
    try:
        state, step, last = run_steps(
            state, step_fn=step_fn, next_batch=lambda: mesh_lib.global_batches(mesh, next(data_iterator)),
            key=jax.random.key(config.seed), start=start, total=total_steps, manager=manager,
            data_iterator=data_iterator, config=config, config_dict=config_dict, writer=writer, workdir=workdir,
            lr_field="optim.base_lr",
        )  # fmt: skip
    finally:
        writer.close()

    # ---------------------------------------------------------------- outputs
    outputs = {"workdir": workdir, "step": step, "metrics": last, "state": state, "graphdef": graphdef}
    if is_lead and step == total_steps:
        outputs["loss_curve"] = plot_curves(workdir)
        if config.export_at_end:
            outputs["exports"] = export_pretrained(
                graphdef, state, config, os.path.join(workdir, "export"), epoch=step // steps_per_epoch
            )
    return outputs
