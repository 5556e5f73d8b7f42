"""MoCoV2 workdirs → weights: the encoder for fine-tuning (`restore_encoder`) and PyTorch files (`export`)."""

from __future__ import annotations

import os

import jax
import numpy as np
from flax import nnx

from cemjax.convert import export_encoder_files, export_moco, torch_available
from cemjax.methods.mocov2.step import encoders_from_state, init_state, query_encoder, sgd_with_weight_decay
from cemjax.train import checkpointing
from cemjax.train.loop import saved_config


def export_pretrained(graphdef, state, config, out_dir: str, *, epoch: int) -> dict[str, str]:
    """Write into `out_dir` the query encoder without its head (`export_encoder_files`: safetensors first, the
    torchvision / smp `.pth` files with torch) and, with torch, `mocov2.pth.tar`: the reference checkpoint
    layout (both encoders, queue, norms; `module.encoder_q.*` …)."""
    state = jax.device_get(state)
    encoder_q, encoder_k = encoders_from_state(graphdef, state)
    paths = export_encoder_files(encoder_q, out_dir)
    if torch_available():
        paths["moco"] = str(export_moco(
            os.path.join(out_dir, "mocov2.pth.tar"), encoder_q, encoder_k, np.asarray(state.queue),
            int(state.queue_ptr), epoch=epoch, norms=tuple(config.data.norms),
        ))  # fmt: skip
    return paths


def restore(workdir: str, step: int | None = None):
    """A MoCoV2 workdir's saved step (default: the latest) → (graphdef, MoCoState on the host, config, step,
    steps_per_epoch)."""
    config, resolved = saved_config(workdir)
    tx = sgd_with_weight_decay(lambda _: 0.0, config.optim.momentum, config.optim.weight_decay)  # structure only
    graphdef, template = init_state(query_encoder(config.model, config.seed), tx, config.moco.queue_size,
                                    config.model.embed_dim, config.seed)  # fmt: skip
    state, step = checkpointing.restore_saved_state(workdir, template, step)
    return graphdef, state, config, step, int(resolved.get("steps_per_epoch", 0))


def restore_encoder(workdir: str, step: int | None = None) -> tuple[nnx.Module, tuple[float, float], str]:
    """(the query encoder without its MLP head, its (mean, std) normalisation, a one-line description)."""
    graphdef, state, config, step, _ = restore(workdir, step)
    encoder, _ = encoders_from_state(graphdef, state)
    encoder.fc = None  # the projection head is for the contrastive task only
    mean, std = config.data.norms
    return encoder, (float(mean), float(std)), f"the query encoder of MoCoV2 step {step} in {workdir}"


def export(workdir: str, out_dir: str | None = None, step: int | None = None) -> dict[str, str]:
    """Export any saved step (default: the latest) of a MoCoV2 workdir, as `export_pretrained` does."""
    graphdef, state, config, step, steps_per_epoch = restore(workdir, step)
    epoch = step // steps_per_epoch if steps_per_epoch else 0
    return export_pretrained(
        graphdef, state, config, out_dir or os.path.join(workdir, f"export_step{step}"), epoch=epoch
    )
