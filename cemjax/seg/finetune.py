"""Fine-tuning loop: `finetune(config, workdir)` trains a UNet on one benchmark, evaluates it and exports it.

The same machinery as pretraining: a data mesh with a sharded, donated `jax.jit` step, grain input whose
state is checkpointed with the train state and config by Orbax (exact resume; SIGTERM saves and exits), a
progress line, TensorBoard scalars and a loss PNG. At the end the workdir holds:

  model/                 the fine-tuned UNet as a cemjax model directory (Orbax + spec.json)
  export/unet_smp.pth    an smp `Unet` state_dict (loads with strict=True)
  results.json           the benchmark score (see cemjax.seg.evaluate) and the run's facts
  overlays/*.png         image | truth | prediction panels of test examples
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from flax import nnx

from cemjax.convert.files import atomic_write
from cemjax.data.benchmarks import BENCHMARKS
from cemjax.data.finetune import CropBatches, Planes
from cemjax.data.pretrain import iterate_batches
from cemjax.seg import config as config_lib
from cemjax.seg.encoder_init import initialise
from cemjax.seg.freeze import frozen_encoder_blocks, trainable_mask
from cemjax.seg.optim import one_cycle, one_cycle_adamw
from cemjax.seg.step import init_state, make_predict_fn, make_train_step, masked_tx, model_from_state
from cemjax.train import mesh as mesh_lib
from cemjax.train.metrics import MetricWriter, plot_curves
from cemjax.train.runtime import NonFiniteLossError, run_steps, start_or_resume  # noqa: F401  (NonFiniteLossError: re-exported)


def _optimizer(config, params, policy: str):
    o = config.optim
    kwargs = dict(pct_start=o.pct_start, div_factor=o.div_factor, final_div_factor=o.final_div_factor)
    tx = one_cycle_adamw(config.iterations, o.max_lr, o.weight_decay, **kwargs)
    lr_fn, _ = one_cycle(config.iterations, o.max_lr, **kwargs)
    mask = trainable_mask(params, policy, unfreeze_encoder_bn=config.unfreeze_encoder_bn)
    n_train = sum(
        int(np.prod(p.shape)) for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True) if t
    )
    return masked_tx(tx, mask), lr_fn, n_train


def training_planes(benchmark: str, data_dir: str | None) -> Planes:
    """The training split, or FileNotFoundError with the build command when it is not built."""
    try:
        return Planes(benchmark, "train", data_dir)
    except Exception as error:  # noqa: BLE001  (TFDS raises several types for a missing build)
        raise FileNotFoundError(
            f"cem_benchmarks/{benchmark} is not built in {data_dir or '~/tensorflow_datasets'}; build it with: "
            f"python -m cemjax.data.build cem_benchmarks/{benchmark} --manual_dir BENCHMARKS --data_dir "
            f"{data_dir or '~/tensorflow_datasets'} ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
        ) from error


def _write_json(path: str, obj) -> None:
    atomic_write(path, lambda tmp: open(tmp, "w").write(json.dumps(obj, indent=2)))


def finetune(config, workdir: str, *, evaluate_at_end: bool = True) -> dict:
    """Run (or resume) fine-tuning; returns {"step", "metrics", "results", paths…}."""
    mesh_lib.maybe_initialize_distributed(
        config.distributed.coordinator or None, config.distributed.num_processes, config.distributed.process_id
    )
    is_lead = jax.process_index() == 0
    mesh = mesh_lib.make_data_mesh(config.mesh.num_devices)
    config_lib.validate(config, mesh.shape[mesh_lib.DATA])
    if config.benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {config.benchmark!r}; known: {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[config.benchmark]
    data_dir = config.data.data_dir or None

    # ---------------------------------------------------------------- data (checked before anything is written)
    planes = training_planes(config.benchmark, data_dir)
    os.makedirs(workdir, exist_ok=True)
    batches = CropBatches(
        planes, config.data.loader_crop or config.crop, config.batch_size, config.seed,
        jax.process_index(), jax.process_count(),
    )  # fmt: skip
    data_iterator = iter(iterate_batches(batches, worker_count=config.data.worker_count))

    # ---------------------------------------------------------------- model, optimizer, state
    init = initialise(config, planes)
    policy = config_lib.resolve_finetune_layer(config)
    tx, lr_fn, n_trainable = _optimizer(config, nnx.state(init.model, nnx.Param), policy)
    graphdef, host_state = init_state(init.model, tx)
    shardings = mesh_lib.state_shardings(host_state, mesh, config.mesh.param_sharding)
    if is_lead:
        print(f"{config.benchmark}: encoder from {init.source}; finetune_layer={policy}; "
              f"{n_trainable:,} trainable parameters; norms={init.norms}", flush=True)  # fmt: skip

    manager, state, start = start_or_resume(config, workdir, host_state, shardings, data_iterator)
    del host_state

    fixed = frozen_encoder_blocks(policy) if config.frozen_bn_stats == "fixed" else ()
    step_fn = jax.jit(
        make_train_step(
            graphdef, tx, lr_fn, crop=config.crop, norms=init.norms, class_weights=tuple(config.loss.class_weights),
            noise_blur=spec.noise_blur,
            nonempty=spec.nonempty if config.data.nonempty_crops < 0 else bool(config.data.nonempty_crops),
            fixed_bn_blocks=tuple(b for b in fixed if b in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")),
        ),
        in_shardings=(shardings, mesh_lib.data_sharding(mesh), mesh_lib.replicated(mesh)),
        out_shardings=(shardings, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )  # fmt: skip
    base_key = jax.random.key(config.seed)
    config_dict = json.loads(config.to_json_best_effort())
    config_dict["resolved"] = {"finetune_layer": policy, "norms": init.norms, "init_source": init.source}
    if is_lead:
        _write_json(os.path.join(workdir, "config.json"), config_dict)

    # ---------------------------------------------------------------- loop
    total = config.iterations
    writer = MetricWriter(workdir, total_steps=total, enabled=is_lead)

    def next_batch():
        return {k: mesh_lib.global_batch(mesh, v) for k, v in next(data_iterator).items()}

    state, step, last = run_steps(
        state, step_fn=step_fn, next_batch=next_batch, key=base_key, start=start, total=total, manager=manager,
        data_iterator=data_iterator, config=config, config_dict=config_dict, writer=writer, workdir=workdir,
        lr_field="optim.max_lr",
    )  # fmt: skip
    outputs = {"workdir": workdir, "step": step, "metrics": last}
    if step == total and is_lead:
        outputs.update(_finish(config, workdir, graphdef, state, init, policy, data_dir, writer, evaluate_at_end, last))
    writer.close()
    return outputs


def _finish(config, workdir, graphdef, state, init, policy, data_dir, writer, evaluate_at_end, last) -> dict:
    """Model directory, smp export, loss PNG, evaluation with overlays and results.json."""
    from cemjax.convert import export_unet
    from cemjax.convert.flax_checkpoint import save_model
    from cemjax.models.spec import ModelSpec

    model = model_from_state(graphdef, jax.device_get(state))
    in_channels = len(init.norms[0])
    spec = ModelSpec(kind="unet", depth=config.model.depth, in_channels=in_channels,
                     classes=config.model.num_classes, dtype=config.model.compute_dtype)  # fmt: skip
    out = {
        "model_dir": str(save_model(os.path.join(workdir, "model"), model, spec)),
        "smp_export": str(export_unet(model, os.path.join(workdir, "export", "unet_smp.pth"))),
        "loss_curve": plot_curves(workdir, keys=("loss", "fg_iou", "lr")),
    }
    if evaluate_at_end:
        from cemjax.seg.evaluate import evaluate

        results = evaluate(make_predict_fn(graphdef, state, init.norms), config, data_dir, workdir)
        writer.write_scalars(config.iterations, {"test/iou": results["iou"]})
        record = {
            "benchmark": config.benchmark, "init": config.init, "init_source": init.source, "finetune_layer": policy,
            "iterations": config.iterations, "depth": config.model.depth, "iou": results["iou"],
            "sets": results["sets"], "overlays": results["overlays"], "final_train_metrics": last,
        }  # fmt: skip
        _write_json(os.path.join(workdir, "results.json"), record)
        out["results"] = record
    return out
