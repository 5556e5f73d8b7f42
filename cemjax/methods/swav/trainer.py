"""SwAV pretraining: `train(config, workdir)`. The update is `step.make_train_step`, pure and jitted with
shardings and a donated state; the run around it (data, resume, logging, probes, exports) is the one every
method shares (`cemjax.train.pretraining`).
"""

from __future__ import annotations

from cemjax.methods.swav.data import MultiCrop, multicrop_tiles
from cemjax.methods.swav.export import export_pretrained
from cemjax.methods.swav.step import build_model, init_state, make_train_step, model_from_state
from cemjax.train.optim import larc_sgd
from cemjax.train.pretraining import MethodSetup, run_pretraining
from cemjax.train.schedules import warmup_cosine


def validate(config, num_devices: int) -> None:
    """Clear, one-line errors for configurations that cannot run."""
    b, s = config.batch_size, config.swav
    problems = []
    if b % num_devices:
        problems.append(f"batch_size={b} is not divisible by the {num_devices} devices of the mesh")
    if s.queue_length < 0 or s.queue_length % b:
        problems.append(f"swav.queue_length={s.queue_length} must be 0 or a multiple of batch_size={b} (the "
                        f"reference rounds it down to one)")  # fmt: skip
    lists = ("crop_sizes", "crop_counts", "crop_min_scales", "crop_max_scales")
    if len({len(s[name]) for name in lists}) != 1:
        problems.append(f"swav.{', swav.'.join(lists)} must have one entry per crop resolution")
    elif not all(0 < lo <= hi <= 1 for lo, hi in zip(s.crop_min_scales, s.crop_max_scales, strict=True)):
        problems.append(f"swav.crop_min_scales={tuple(s.crop_min_scales)} and swav.crop_max_scales="
                        f"{tuple(s.crop_max_scales)}: need 0 < min ≤ max ≤ 1 per resolution")  # fmt: skip
    n_views = sum(s.crop_counts)
    if n_views < 2 or not s.crops_for_assign or not all(0 <= v < n_views for v in s.crops_for_assign):
        problems.append(f"swav.crops_for_assign={tuple(s.crops_for_assign)} must name views 0 … {n_views - 1} "
                        f"of the ≥ 2 crops")  # fmt: skip
    if s.epsilon <= 0 or s.temperature <= 0 or s.sinkhorn_iterations < 1 or s.num_prototypes < 2:
        problems.append(f"swav.epsilon={s.epsilon}, swav.temperature={s.temperature} must be > 0, "
                        f"swav.sinkhorn_iterations={s.sinkhorn_iterations} ≥ 1, swav.num_prototypes ≥ 2")  # fmt: skip
    if problems:
        raise ValueError("invalid config: " + "; ".join(problems))


def setup(config, steps_per_epoch: int, mesh) -> MethodSetup:
    """The SwAV network and queue, LARC + SGD under the warm-up + cosine schedule, and the step."""
    del mesh  # global-batch BatchNorm needs no per-device code
    s, o = config.swav, config.optim
    total_steps = config.epochs * steps_per_epoch
    lr_fn = warmup_cosine(o.base_lr, o.final_lr, total_steps=total_steps,
                          warmup_steps=o.warmup_epochs * steps_per_epoch, start_lr=o.start_lr)  # fmt: skip
    tx = larc_sgd(lr_fn, momentum=o.momentum, weight_decay=o.weight_decay, trust_coefficient=o.larc_trust)
    graphdef, host_state = init_state(build_model(config.model, s, config.seed), tx, s.queue_length,
                                      len(s.crops_for_assign))  # fmt: skip
    crops, norms = MultiCrop.from_config(s), tuple(config.data.norms)
    step_fn = make_train_step(
        graphdef, tx, lr_fn, crops=crops, norms=norms, crops_for_assign=tuple(s.crops_for_assign),
        temperature=s.temperature, epsilon=s.epsilon, sinkhorn_iterations=s.sinkhorn_iterations,
        freeze_prototypes_steps=s.freeze_prototypes_steps, queue_start_step=s.queue_start_epoch * steps_per_epoch,
    )  # fmt: skip
    return MethodSetup(
        graphdef=graphdef,
        host_state=host_state,
        step_fn=step_fn,
        encoder=lambda state: model_from_state(graphdef, state).encoder,
        export=lambda state, out_dir, epoch: export_pretrained(graphdef, state, config, out_dir, epoch=epoch),
        views=lambda canvas, valid: multicrop_tiles(canvas, crops, config.seed, norms, valid),
        views_tag="augment/swav_multicrop",
        curves=("loss", "lr", "queue_used"),
    )


def train(config, workdir: str) -> dict:
    """Run (or resume) SwAV pretraining; returns the last logged metrics and the output paths."""
    return run_pretraining(config, workdir, validate=validate, setup=setup)
