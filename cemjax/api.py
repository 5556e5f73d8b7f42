"""The Python API: every job of the command line, callable from a notebook or a script.

    import cemjax
    config = cemjax.get_config("mocov2:demo")          # or a config module's get_config(...)
    run = cemjax.pretrain(config, "runs/mocov2")        # any method: config.method
    ft = cemjax.get_config("finetune:benchmark=lucchi_pp,init=runs/mocov2,variant=demo")
    result = cemjax.finetune(ft, "runs/lucchi_pp")
    files = cemjax.export("runs/mocov2", "runs/mocov2/export")
    encoder, norms, what = cemjax.restore_encoder("runs/mocov2")
    model, spec = cemjax.load_model("runs/lucchi_pp/model")
    predictor = cemjax.load_predictor("runs/mine/model"); labels = predictor(volume)
    cemjax.segment("runs/mine/model", "volume.mrc", "volume_seg.zarr", instances=True)   # blockwise, resumable

Data: `build_dataset("cem500k", manual_dir, data_dir)` (TFDS), `curate(inputs, output, ...)` (Beam).
"""

from __future__ import annotations

import os

from cemjax import methods
from cemjax.configs import get_config
from cemjax.convert.flax_checkpoint import load_model
from cemjax.curate.pipeline import CurateConfig, CurateResult
from cemjax.curate.pipeline import run as run_curation
from cemjax.data.build import build
from cemjax.seg.grid import run_grid, write_table
from cemjax.seg.trainer import finetune
from cemjax.segment.predictor import load_predictor
from cemjax.segment.run import segment

__all__ = ["build_dataset", "curate", "evaluate_grid", "export", "finetune", "get_config", "load_model",
           "load_predictor", "pretrain", "restore_encoder", "segment"]  # fmt: skip


def pretrain(config, workdir: str | os.PathLike) -> dict:
    """Run or resume self-supervised pretraining with `config.method` (see `cemjax.methods`)."""
    return methods.get(config.method).train(config, os.fspath(workdir))


def restore_encoder(workdir: str | os.PathLike, step: int | None = None):
    """(encoder without its pretraining head, (mean, std), description) of a pretraining workdir."""
    return methods.restore_encoder(os.fspath(workdir), step)


def export(workdir: str | os.PathLike, out_dir: str | os.PathLike | None = None, step: int | None = None):
    """Weight files (safetensors; with torch: torchvision, smp and the method's own layout) of a pretraining run."""
    return methods.export(os.fspath(workdir), os.fspath(out_dir) if out_dir else None, step)


def evaluate_grid(root, benchmarks, inits, *, variant: str = "paper", data_dir: str = "") -> dict[str, str]:
    """Fine-tune and score every benchmark × init cell (resumable) and write the table; returns its paths."""

    def overrides(config):
        if data_dir:
            config.data.data_dir = data_dir

    return write_table(run_grid(root, benchmarks, inits, variant=variant, overrides=overrides), root)


def curate(inputs: list[str], output: str, **options) -> CurateResult:
    """Curate raw EM (files and folders) into deduplicated, filtered patches; options as `CurateConfig`."""
    return run_curation(CurateConfig(list(inputs), output, **options))


def build_dataset(name: str, manual_dir, data_dir):
    """Build `cem500k` or `cem_benchmarks/<name>` from a local folder; returns the version folder."""
    return build(name, manual_dir, data_dir)
