"""Fine-tuning: `finetune(config, workdir)` trains a UNet on one benchmark or on a folder of your own labelled
data (`config.data.folder`, see `cemjax.data.folder`), evaluates it and exports it.

The same machinery as pretraining (`cemjax.train`): a data mesh with a sharded, donated `jax.jit` step, grain
input whose state is checkpointed with the train state and config by Orbax (exact resume; SIGTERM saves and
exits), a progress line with ETA, TensorBoard and a loss PNG. At the end the workdir holds:

  model/                       the fine-tuned UNet as a cemjax model directory (Orbax + spec.json + model.json,
                               which `cemjax.load_predictor` reads); with validation, the best-validated weights
  export/unet_smp.safetensors  an smp `Unet` state_dict (always); export/unet_smp.pth the same with torch
  results.json                 the benchmark score (see cemjax.seg.evaluate) or the validation IoU per class
  overlays/*.png               image | truth | prediction panels of test (validation) examples
  validation.jsonl, best_model/  folder runs with a validation split (cemjax.seg.validation)
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
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.data.finetune import CropBatches
from cemjax.data.folder_classes import IGNORE
from cemjax.data.pretrain import iterate_batches
from cemjax.models.registry import encoder_entry, freeze_policies
from cemjax.models.spec import ModelSpec
from cemjax.seg.encoder_init import initialise
from cemjax.seg.evaluate import evaluate
from cemjax.seg.freeze import frozen_encoder_blocks, trainable_mask
from cemjax.seg.model_info import ModelInfo, provenance, write_model_info
from cemjax.seg.optim import one_cycle, one_cycle_adamw
from cemjax.seg.overlays import write_overlay
from cemjax.seg.step import init_state, make_predict_fn, make_train_step, masked_tx, model_from_state
from cemjax.seg.training_data import is_folder_run, open_training_data
from cemjax.seg.validation import BEST, Validator
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
    if is_folder_run(config) and config.benchmark:
        problems.append(f"give benchmark={config.benchmark} or folder={config.data.folder}, not both")
    elif not is_folder_run(config) and config.benchmark not in BENCHMARKS:
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


def _recipe_flag(config, value: int, field: str) -> bool:
    """A -1/0/1 config flag: -1 = the benchmark's recipe (own data: off)."""
    if value >= 0:
        return bool(value)
    return bool(getattr(BENCHMARKS[config.benchmark].recipe, field)) if not is_folder_run(config) else False


def finetune(config, workdir: str, *, evaluate_at_end: bool = True) -> dict:
    """Run (or resume) fine-tuning; returns {"step", "metrics", "results", paths…}."""
    mesh, is_lead = start_run(config)
    validate(config, mesh.shape[mesh_lib.DATA])

    # ---------------------------------------------------------------- data (a benchmark build or your folder)
    data, config = open_training_data(config)
    validate(config, mesh.shape[mesh_lib.DATA])
    data_dir = config.data.data_dir or None
    name = config.benchmark or data.dataset.get("folder", "")
    planes = data.train
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
        print(f"{name}: encoder from {init.source}; finetune_layer={policy}; "
              f"{n_trainable:,} trainable parameters; norms={init.norms}", flush=True)  # fmt: skip

    manager, state, start = start_or_resume(config, workdir, host_state, shardings, data_iterator)
    del host_state

    fixed = frozen_encoder_blocks(policy, config.model.encoder) if config.frozen_bn_stats == "fixed" else ()
    step_fn = jit_step(
        make_train_step(graphdef, tx, lr_fn, crop=config.crop, norms=init.norms,
                        class_weights=tuple(config.loss.class_weights),
                        noise_blur=_recipe_flag(config, config.data.noise_blur, "noise_blur"),
                        nonempty=_recipe_flag(config, config.data.nonempty_crops, "nonempty"), fixed_bn_blocks=fixed,
                        ignore_label=data.ignore_label),
        mesh, shardings,
    )  # fmt: skip
    config_dict = record_config(workdir, config, is_lead=is_lead, finetune_layer=policy, norms=init.norms,
                                init_source=init.source, dataset=data.dataset, loader_window=window)  # fmt: skip

    # ---------------------------------------------------------------- loop
    total = config.iterations
    writer = MetricWriter(workdir, total_steps=total, start_step=start, enabled=is_lead)
    writer.write_config(config_dict)
    spec = _spec(config, init)
    validator = None
    if data.validation:
        validator = Validator(data.validation, graphdef, spec, init.norms, data.classes, mode=data.eval_mode,
                              every=config.eval.every or max(1, total // 10), patience=config.eval.patience,
                              total=total, workdir=workdir, writer=writer, is_lead=is_lead,
                              batch_size=config.eval.batch_size, overlays=config.eval.overlays)  # fmt: skip

    try:
        stopped = validator is not None and validator.should_stop()
        if stopped and is_lead:
            print(f"early stopping reached before (validation.jsonl); finishing from step {start}", flush=True)
        state, step, last = (state, start, {}) if stopped else run_steps(
            state, step_fn=step_fn, next_batch=lambda: mesh_lib.global_batches(mesh, next(data_iterator)),
            key=jax.random.key(config.seed), start=start, total=total,
            manager=manager, data_iterator=data_iterator, config=config, config_dict=config_dict, writer=writer,
            workdir=workdir, lr_field="optim.max_lr", after_step=validator,
        )  # fmt: skip
        stopped = validator is not None and validator.should_stop()
        outputs = {"workdir": workdir, "step": step, "metrics": last}
        if (step == total or stopped) and is_lead:
            if stopped:
                print(f"early stopping at step {step}: no better validation IoU in {config.eval.patience} "
                      f"validations (best: step {validator.best['step']})", flush=True)  # fmt: skip
            outputs |= _finish(config, workdir, graphdef, state, spec, init, policy, data, data_dir, writer,
                               evaluate_at_end, last, step, validator)  # fmt: skip
    finally:
        writer.close()
    return outputs


def _validation_overlays(model, validator, workdir: str) -> list[str]:
    """image | truth | prediction PNGs of the first `eval.overlays` validation pairs (middle slice of volumes)."""
    paths = []
    for k, pair in enumerate(validator.pairs[: validator.overlays]):
        image = pair.image if pair.image.ndim == 2 else pair.image[pair.image.shape[0] // 2]
        truth = pair.mask if pair.mask.ndim == 2 else pair.mask[pair.mask.shape[0] // 2]
        pred = validator.predict(model, image)
        shown = np.where(truth == IGNORE, 0, truth)
        path = os.path.join(workdir, "overlays", f"validation_{k}.png")
        paths.append(write_overlay(path, image, shown, pred, validator.class_names, title=f"validation · {pair.name}"))
    return paths


def _spec(config, init) -> ModelSpec:
    return ModelSpec(kind="unet", encoder=config.model.encoder, in_channels=len(init.norms[0]),
                     classes=config.model.num_classes, dtype=config.model.compute_dtype)  # fmt: skip


def _finish(config, workdir, graphdef, state, spec, init, policy, data, data_dir, writer, evaluate_at_end, last,
            step, validator) -> dict:  # fmt: skip
    """Model directory (+ model.json), smp export, loss PNG, evaluation (benchmark) or validation record
    (folder) with overlays and results.json."""
    model = model_from_state(graphdef, jax.device_get(state))
    best = validator.best if validator is not None else None
    if best is not None and config.eval.keep_best:
        model, _ = load_model(os.path.join(workdir, BEST))
    model_dir = save_model(os.path.join(workdir, "model"), model, spec)
    out = {
        "model_dir": str(model_dir),
        "smp_safetensors": str(export_unet(model, os.path.join(workdir, "export", "unet_smp.safetensors"))),
        "loss_curve": plot_curves(workdir, keys=("loss", "fg_iou", "lr")),
    }
    if torch_available():
        out["smp_export"] = str(export_unet(model, os.path.join(workdir, "export", "unet_smp.pth")))
    record = {"init": config.init, "init_source": init.source, "finetune_layer": policy,
              "iterations": config.iterations, "steps": step, "encoder": config.model.encoder}  # fmt: skip
    if validator is not None:
        chosen = best if config.eval.keep_best and best is not None else validator.history[-1]
        overlays = _validation_overlays(model, validator, workdir)
        record |= {"dataset": data.dataset, "classes": list(data.classes), "validation": chosen,
                   "model_from_step": chosen["step"], "overlays": overlays}  # fmt: skip
    elif evaluate_at_end and not is_folder_run(config):
        results = evaluate(make_predict_fn(graphdef, state, init.norms), config, data_dir, workdir)
        writer.write_scalars(config.iterations, {"test/iou": results["iou"]})
        for k, path in enumerate(results["overlays"]):
            picture = np.asarray(Image.open(path).convert("RGB"))[None]
            writer.write_images(f"test/overlay_{k}", picture, config.iterations)
        record = {"benchmark": config.benchmark, **record, "iou": results["iou"], "sets": results["sets"],
                  "overlays": results["overlays"], "final_train_metrics": last}  # fmt: skip
    validation = record.get("validation")
    info = ModelInfo(spec, data.classes, init.norms, data.eval_mode, spacing_nm=data.spacing,
                     provenance=provenance(config, init.source, policy, data.dataset, step, validation))  # fmt: skip
    out["model_info"] = write_model_info(model_dir, info)
    if evaluate_at_end or validator is not None:
        write_json(os.path.join(workdir, "results.json"), record)
        out["results"] = record
    return out
