"""Save and restore a bare cemjax model (weights + BN statistics + its `ModelSpec`) with Orbax.

Layout of a model directory: `spec.json` and `state/` (an Orbax StandardCheckpointer tree of `nnx.state`).
Training checkpoints (optimizer, data iterator) live in `cemjax.train`; this is the interchange format that
`experiments/export_torch.py` reads and writes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx

from cemjax.common.files import write_json
from cemjax.models.spec import ModelSpec, abstract_model, build_model


def save_model(directory: str | os.PathLike, model: nnx.Module, spec: ModelSpec) -> Path:
    """Write `model` (host or fully replicated arrays) to `directory` (replaced if it exists). Only the calling
    process takes part, so in a multi-process run one process (the lead) can write it alone."""
    directory = Path(directory).absolute()
    if (directory / "state").exists():
        shutil.rmtree(directory / "state")
    directory.mkdir(parents=True, exist_ok=True)
    this_process = ocp.options.MultiprocessingOptions(
        primary_host=jax.process_index(), active_processes={jax.process_index()}
    )
    with ocp.StandardCheckpointer(multiprocessing_options=this_process) as checkpointer:
        checkpointer.save(directory / "state", nnx.state(model))
    write_json(directory / "spec.json", spec.to_dict())
    return directory


def load_model(directory: str | os.PathLike) -> tuple[nnx.Module, ModelSpec]:
    """Rebuild the model saved by `save_model`."""
    directory = Path(directory).absolute()
    spec_path = directory / "spec.json"
    if not spec_path.is_file():
        raise FileNotFoundError(f"{directory}: not a cemjax model directory (no spec.json); see save_model")
    spec = ModelSpec.from_dict(json.loads(spec_path.read_text()))
    abstract = abstract_model(spec)
    graphdef, abstract_state = nnx.split(abstract)
    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(directory / "state", abstract_state)
    return nnx.merge(graphdef, state), spec


__all__ = ["ModelSpec", "build_model", "load_model", "save_model"]
