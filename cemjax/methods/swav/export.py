"""SwAV workdirs → weights: the encoder for fine-tuning (`restore_encoder`) and PyTorch files (`export`)."""

from __future__ import annotations

import os

import jax
from flax import nnx

from cemjax.convert import export_encoder_files, export_swav, torch_available
from cemjax.methods.swav.step import build_model, init_state, model_from_state
from cemjax.train import checkpointing
from cemjax.train.loop import saved_config
from cemjax.train.optim import larc_sgd


def export_pretrained(graphdef, state, config, out_dir: str, *, epoch: int) -> dict[str, str]:
    """Write into `out_dir` the encoder without the SwAV heads (`export_encoder_files`: safetensors first, the
    torchvision / smp `.pth` files with torch) and, with torch, `swav.pth.tar` in the CEM1.5M layout (encoder,
    projection head, prototypes under `module.`; norms), which `import_resnet` and `import_swav` read."""
    model = model_from_state(graphdef, jax.device_get(state))
    paths = export_encoder_files(model.encoder, out_dir)
    if torch_available():
        paths["swav"] = str(export_swav(os.path.join(out_dir, "swav.pth.tar"), model, epoch=epoch,
                                        norms=tuple(config.data.norms)))  # fmt: skip
    return paths


def restore(workdir: str, step: int | None = None):
    """A SwAV workdir's saved step (default: the latest) → (graphdef, SwAVState on the host, config, step,
    steps_per_epoch)."""
    config, resolved = saved_config(workdir)
    s = config.swav
    tx = larc_sgd(lambda _: 0.0, momentum=config.optim.momentum, weight_decay=config.optim.weight_decay)  # structure
    graphdef, template = init_state(build_model(config.model, s, config.seed), tx, s.queue_length,
                                    len(s.crops_for_assign))  # fmt: skip
    state, step = checkpointing.restore_saved_state(workdir, template, step)
    return graphdef, state, config, step, int(resolved.get("steps_per_epoch", 0))


def restore_encoder(workdir: str, step: int | None = None) -> tuple[nnx.Module, tuple[float, float], str]:
    """(the encoder without the projection head and prototypes, its (mean, std) normalisation, a description)."""
    graphdef, state, config, step, _ = restore(workdir, step)
    mean, std = config.data.norms
    encoder = model_from_state(graphdef, state).encoder
    return encoder, (float(mean), float(std)), f"the encoder of SwAV step {step} in {workdir}"


def export(workdir: str, out_dir: str | None = None, step: int | None = None) -> dict[str, str]:
    """Export any saved step (default: the latest) of a SwAV workdir, as `export_pretrained` does."""
    graphdef, state, config, step, steps_per_epoch = restore(workdir, step)
    epoch = step // steps_per_epoch if steps_per_epoch else 0
    return export_pretrained(graphdef, state, config, out_dir or os.path.join(workdir, f"export_step{step}"),
                             epoch=epoch)  # fmt: skip
