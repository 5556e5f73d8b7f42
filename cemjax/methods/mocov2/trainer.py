"""MoCoV2 pretraining: `train(config, workdir)`. The update is `step.make_train_step`, pure and jitted with
shardings and a donated state; the run around it (data, resume, logging, probes, exports) is the one every
method shares (`cemjax.train.pretraining`).
"""

from __future__ import annotations

from flax import nnx

from cemjax.methods.mocov2.data import view_tiles
from cemjax.methods.mocov2.export import export_pretrained
from cemjax.methods.mocov2.step import BN_MODES, init_state, make_train_step, query_encoder, sgd_with_weight_decay
from cemjax.train.pretraining import MethodSetup, run_pretraining
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


def setup(config, steps_per_epoch: int, mesh) -> MethodSetup:
    """The MoCo state (both encoders, queue), its SGD with the paper's step schedule, and the step."""
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
    m, norms = config.moco, tuple(config.data.norms)
    step_fn = make_train_step(graphdef, tx, lr_fn, momentum=m.momentum, temperature=m.temperature,
                              bn_mode=m.bn_mode, bn_groups=m.bn_groups, image_size=config.image_size, norms=norms,
                              mesh=mesh)  # fmt: skip
    return MethodSetup(
        graphdef=graphdef,
        host_state=host_state,
        step_fn=step_fn,
        encoder=lambda state: nnx.merge(graphdef, state.params_q, state.stats_q),
        export=lambda state, out_dir, epoch: export_pretrained(graphdef, state, config, out_dir, epoch=epoch),
        views=lambda canvas, valid: view_tiles(canvas, 4, config.seed, config.image_size, norms, valid),
        views_tag="augment/mocov2_views",
        curves=("loss", "top1", "lr"),
    )


def train(config, workdir: str) -> dict:
    """Run (or resume) MoCoV2 pretraining; returns the last logged metrics and the output paths."""
    return run_pretraining(config, workdir, validate=validate, setup=setup)
