"""Fine-tuning: `finetune(config, workdir)` trains a UNet on one benchmark, evaluates it and exports it.

The same machinery as pretraining (`cemjax.train`): a data mesh with a sharded, donated `jax.jit` step, grain
input whose state is checkpointed with the train state and config by Orbax (exact resume; SIGTERM saves and
exits), a progress line with ETA, TensorBoard and a loss PNG. At the end the workdir holds:

  model/                       the fine-tuned UNet as a cemjax model directory (Orbax + spec.json)
  export/unet_smp.safetensors  an smp `Unet` state_dict (always); export/unet_smp.pth the same with torch
  results.json                 the benchmark score (see cemjax.seg.evaluate) and the run's facts
  overlays/*.png               image | truth | prediction panels of test examples
"""

from __future__ import annotations

import os

import jax
import numpy as np
from flax import nnx
from PIL import Image

from cemjax.benchmarks import BENCHMARKS
from cemjax.common.files import write_json
from cemjax.convert import export_unet, torch_available
from cemjax.convert.flax_checkpoint import save_model
from cemjax.data.finetune import CropBatches, Planes
from cemjax.data.pretrain import iterate_batches
from cemjax.models.registry import encoder_entry, freeze_policies
from cemjax.models.spec import ModelSpec
from cemjax.seg.encoder_init import initialise
from cemjax.seg.evaluate import evaluate
from cemjax.seg.freeze import frozen_encoder_blocks, trainable_mask
from cemjax.seg.optim import one_cycle, one_cycle_adamw
from cemjax.seg.step import init_state, make_predict_fn, make_train_step, masked_tx, model_from_state
from cemjax.train import mesh as mesh_lib
from cemjax.train.loop import jit_step, record_config, run_steps, start_or_resume, start_run
from cemjax.train.metrics import MetricWriter, plot_curves


def validate(config, num_devices: int) -> None:
    """One-line errors for configs that cannot run."""
    problems = []
    if config.batch_size % num_devices:
        problems.append(f"batch_size={config.batch_size} is not divisible by the {num_devices} devices of the mesh")
    if config.crop % 32:
        problems.append(f"crop={config.crop} must be a multiple of 32 (the UNet's stride)")
    encoder_entry(config.model.encoder)
    policies = freeze_policies(config.model.encoder)
    if config.finetune_layer not in policies + ("auto",):
        problems.append(f"finetune_layer={config.finetune_layer!r}: use auto, {', '.join(policies)}")
    if config.frozen_bn_stats not in ("update", "fixed"):
        problems.append(f"frozen_bn_stats={config.frozen_bn_stats!r}: use 'update' (the reference) or 'fixed'")
    weights = tuple(config.loss.class_weights)
    if weights and len(weights) != config.model.num_classes:
        problems.append(f"loss.class_weights has {len(weights)} entries for {config.model.num_classes} classes")
    if config.init in ("cem500k", "imagenet") and not config.init_weights:
        problems.append(f"init={config.init} needs weights=PATH (a local file; nothing is downloaded)")
    if config.benchmark not in BENCHMARKS:
        problems.append(f"unknown benchmark {config.benchmark!r}; known: {', '.join(BENCHMARKS)}")
    if problems:
        raise ValueError("invalid fine-tuning config: " + "; ".join(problems))


def resolve_finetune_layer(config) -> str:
    """The freeze policy in force: "auto" is the paper's protocol (pretrained frozen, random trained fully)."""
    if config.finetune_layer != "auto":
        return config.finetune_layer
    return "all" if config.init == "random" else "none"


def _optimizer(config, params, policy: str):
    o = config.optim
    kwargs = dict(pct_start=o.pct_start, div_factor=o.div_factor, final_div_factor=o.final_div_factor)
    tx = one_cycle_adamw(config.iterations, o.max_lr, o.weight_decay, **kwargs)
    lr_fn, _ = one_cycle(config.iterations, o.max_lr, **kwargs)
    mask = trainable_mask(params, policy, config.model.encoder, unfreeze_encoder_bn=config.unfreeze_encoder_bn)
    n_train = sum(
        int(np.prod(p.shape)) for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True) if t
    )
    return masked_tx(tx, mask), lr_fn, n_train


def finetune(config, workdir: str, *, evaluate_at_end: bool = True) -> dict:
    """Run (or resume) fine-tuning; returns {"step", "metrics", "results", paths…}."""
    mesh, is_lead = start_run(config)
    validate(config, mesh.shape[mesh_lib.DATA])
    recipe = BENCHMARKS[config.benchmark].recipe
    data_dir = config.data.data_dir or None

    # ---------------------------------------------------------------- data
    planes = Planes(config.benchmark, "train", data_dir)
    window = config.data.loader_crop or max(config.crop, min(planes.max_side(), config.data.max_canvas))
    batches = CropBatches(planes, window, config.batch_size, config.seed, jax.process_index(), jax.process_count())
    data_iterator = iter(iterate_batches(batches, worker_count=config.data.worker_count))

    # ---------------------------------------------------------------- model, optimizer, state
    init = initialise(config, planes)
    policy = resolve_finetune_layer(config)
    tx, lr_fn, n_trainable = _optimizer(config, nnx.state(init.model, nnx.Param), policy)
    graphdef, host_state = init_state(init.model, tx)
    shardings = mesh_lib.state_shardings(host_state, mesh, config.mesh.param_sharding)
    if is_lead:
        print(f"{config.benchmark}: encoder from {init.source}; finetune_layer={policy}; "
              f"{n_trainable:,} trainable parameters; norms={init.norms}", flush=True)  # fmt: skip

    manager, state, start = start_or_resume(config, workdir, host_state, shardings, data_iterator)
    del host_state

    fixed = frozen_encoder_blocks(policy, config.model.encoder) if config.frozen_bn_stats == "fixed" else ()
    nonempty = recipe.nonempty if config.data.nonempty_crops < 0 else bool(config.data.nonempty_crops)
    step_fn = jit_step(
        make_train_step(graphdef, tx, lr_fn, crop=config.crop, norms=init.norms,
                        class_weights=tuple(config.loss.class_weights), noise_blur=recipe.noise_blur,
                        nonempty=nonempty, fixed_bn_blocks=fixed),
        mesh, shardings,
    )  # fmt: skip
    config_dict = record_config(workdir, config, is_lead=is_lead, finetune_layer=policy, norms=init.norms,
                                init_source=init.source, loader_window=window)  # fmt: skip

    # ---------------------------------------------------------------- loop
    total = config.iterations
    writer = MetricWriter(workdir, total_steps=total, start_step=start, enabled=is_lead)
    writer.write_config(config_dict)

    try:
        state, step, last = run_steps(
            state, step_fn=step_fn, next_batch=lambda: mesh_lib.global_batches(mesh, next(data_iterator)),
            key=jax.random.key(config.seed), start=start, total=total,
            manager=manager, data_iterator=data_iterator, config=config, config_dict=config_dict, writer=writer,
            workdir=workdir, lr_field="optim.max_lr",
        )  # fmt: skip
        outputs = {"workdir": workdir, "step": step, "metrics": last}
        if step == total and is_lead:
            outputs |= _finish(config, workdir, graphdef, state, init, policy, data_dir, writer, evaluate_at_end, last)
    finally:
        writer.close()
    return outputs


def _finish(config, workdir, graphdef, state, init, policy, data_dir, writer, evaluate_at_end, last) -> dict:
    """Model directory, smp export, loss PNG, evaluation with overlays and results.json."""
    model = model_from_state(graphdef, jax.device_get(state))
    spec = ModelSpec(kind="unet", encoder=config.model.encoder, in_channels=len(init.norms[0]),
                     classes=config.model.num_classes, dtype=config.model.compute_dtype)  # fmt: skip
    out = {
        "model_dir": str(save_model(os.path.join(workdir, "model"), model, spec)),
        "smp_safetensors": str(export_unet(model, os.path.join(workdir, "export", "unet_smp.safetensors"))),
        "loss_curve": plot_curves(workdir, keys=("loss", "fg_iou", "lr")),
    }
    if torch_available():
        out["smp_export"] = str(export_unet(model, os.path.join(workdir, "export", "unet_smp.pth")))
    if evaluate_at_end:
        results = evaluate(make_predict_fn(graphdef, state, init.norms), config, data_dir, workdir)
        writer.write_scalars(config.iterations, {"test/iou": results["iou"]})
        for k, path in enumerate(results["overlays"]):
            picture = np.asarray(Image.open(path).convert("RGB"))[None]
            writer.write_images(f"test/overlay_{k}", picture, config.iterations)
        record = {
            "benchmark": config.benchmark, "init": config.init, "init_source": init.source, "finetune_layer": policy,
            "iterations": config.iterations, "encoder": config.model.encoder, "iou": results["iou"],
            "sets": results["sets"], "overlays": results["overlays"], "final_train_metrics": last,
        }  # fmt: skip
        write_json(os.path.join(workdir, "results.json"), record)
        out["results"] = record
    return out
