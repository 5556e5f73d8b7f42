"""MoCoV2 pretraining loop: `train(config, workdir)`. One readable trainer; the update itself is
`cemjax.train.moco_step.train_step`, pure and jitted with shardings and a donated state.

Resume is exact: all randomness is a function of (seed, step), and the checkpoint holds the train state,
the grain iterator state of every process and the config. SIGTERM saves and exits cleanly; a non-finite
loss stops the run before anything is saved, so the last checkpoint is the last good one.
"""

from __future__ import annotations

import json
import os

import jax

from cemjax.train import mesh as mesh_lib
from cemjax.train.metrics import MetricWriter, plot_curves
from cemjax.train.moco_step import BN_MODES, build_encoder, init_state, make_train_step, sgd_with_weight_decay
from cemjax.train.pretrain_data import make_loader
from cemjax.train.runtime import NonFiniteLossError, run_steps, start_or_resume  # noqa: F401  (NonFiniteLossError: re-exported)
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
    mesh_lib.maybe_initialize_distributed(
        config.distributed.coordinator or None, config.distributed.num_processes, config.distributed.process_id
    )
    is_lead = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    mesh = mesh_lib.make_data_mesh(config.mesh.num_devices)
    validate(config, mesh.shape[mesh_lib.DATA])

    # ---------------------------------------------------------------- data
    loader, num_records = make_loader(config, process_index=jax.process_index(), process_count=jax.process_count())
    steps_per_epoch = config.steps_per_epoch or max(1, num_records // config.batch_size)
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
    m = config.model
    encoder = build_encoder(m.depth, m.in_channels, m.embed_dim, m.compute_dtype, config.seed)
    graphdef, host_state = init_state(encoder, tx, config.moco.queue_size, m.embed_dim, config.seed)
    shardings = mesh_lib.state_shardings(host_state, mesh, config.mesh.param_sharding)

    # ---------------------------------------------------------------- checkpoints: resume if any
    manager, state, start = start_or_resume(config, workdir, host_state, shardings, data_iterator)
    del host_state

    step_fn = jax.jit(
        make_train_step(
            graphdef,
            tx,
            lr_fn,
            momentum=config.moco.momentum,
            temperature=config.moco.temperature,
            bn_mode=config.moco.bn_mode,
            bn_groups=config.moco.bn_groups,
            image_size=config.image_size,
            norms=tuple(config.data.norms),
            mesh=mesh,
        ),
        in_shardings=(shardings, mesh_lib.data_sharding(mesh), mesh_lib.replicated(mesh)),
        out_shardings=(shardings, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )
    base_key = jax.random.key(config.seed)
    config_dict = json.loads(config.to_json_best_effort())
    config_dict["resolved_steps_per_epoch"] = steps_per_epoch
    if is_lead:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(config_dict, f, indent=2)

    # ---------------------------------------------------------------- loop
    writer = MetricWriter(workdir, total_steps=total_steps, enabled=is_lead)
    try:
        state, step, last = run_steps(
            state, step_fn=step_fn, next_batch=lambda: mesh_lib.global_batch(mesh, next(data_iterator)["image"]),
            key=base_key, start=start, total=total_steps, manager=manager, data_iterator=data_iterator, config=config,
            config_dict=config_dict, writer=writer, workdir=workdir, lr_field="optim.base_lr",
        )  # fmt: skip
    finally:
        writer.close()

    outputs = {"workdir": workdir, "step": step, "metrics": last, "state": state, "graphdef": graphdef}
    if is_lead and step == total_steps:
        outputs["loss_curve"] = plot_curves(workdir)
        if config.export_at_end:
            from cemjax.train.export import export_pretrained

            outputs["exports"] = export_pretrained(
                graphdef, state, config, os.path.join(workdir, "export"), epoch=step // steps_per_epoch
            )
    return outputs
