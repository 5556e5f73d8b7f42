"""`segment(model_dir, input, output)`: a fine-tuned model over a whole image or volume, block by block.

    cemjax.segment("runs/mine/model", "volume.mrc", "volume_seg.zarr", mode="stack", instances=True)

- input: any file `cemjax.io.open_em` reads (tif/multi-page tif, mrc, nrrd, h5, zarr / OME-Zarr, …), 2D or
  3D, any dtype curation reads; output: `.zarr` (OME-Zarr, `cemjax.segment.store`) or `.tif`.
- mode: "2d" (images), "stack" (xy planes) or "orthoplane" (xy, xz, yz averaged), as the paper evaluates
  (docs/method.md §5); the default is the model's (model.json). Blocks with a halo (`cemjax.segment.grid`):
  where a block spans its axes the result equals whole-volume inference (`cemjax.seg.inference`).
- Memory follows the block (tile, batch, two results in flight), not the volume. Batches are split over this
  host's devices; with several processes (`distributed`, as for training) each takes every n-th block.
- Resumable: finished blocks are skipped after a kill; the output is keyed on the model, the input's identity
  and the settings, so a changed model or input is never resumed into. Progress with ETA on stderr.
- instances: connected components per class across block borders and `<output>.objects.csv` (needs the
  voxel spacing, from the file or `spacing`).
"""

from __future__ import annotations

import os

import jax
import numpy as np
import tifffile
import zarr
from jax.experimental import multihost_utils

from cemjax.common.errors import ConfigError, InputError
from cemjax.common.progress import Progress
from cemjax.segment.engine import resolve_mode, run_blocks
from cemjax.segment.grid import output_chunks, plan
from cemjax.segment.objects import label_instances, write_objects_csv
from cemjax.segment.predictor import Predictor, load_predictor
from cemjax.segment.source import open_source
from cemjax.segment.store import TifOutput, ZarrOutput, prepare
from cemjax.train import mesh as mesh_lib

INSTANCE_SLAB_VOXELS = 1 << 23


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def output_kind(output: str) -> str:
    low = output.lower().rstrip("/")
    if low.endswith(".zarr"):
        return "zarr"
    if low.endswith((".tif", ".tiff")):
        return "tif"
    raise ConfigError(f"output {output!r}: name it .zarr (OME-Zarr) or .tif")


def segment(model, input_, output, *, mode: str | None = None, probabilities: bool = False, instances: bool = False,
            spacing=None, channel=None, overwrite: bool = False, max_tile: int | None = None, halo: int = 32,
            block=(None, None, None), batch_size: int = 0, ngff: str = "0.4", num_devices: int = -1,
            distributed=None, progress: bool = True) -> dict:  # fmt: skip
    """Segment `input_` with `model` (a model directory or a Predictor) into `output`. Returns {"output",
    "mode", "blocks", "computed", "resumed", "spacing", "objects_csv", "objects"}. distributed: (coordinator,
    num_processes, process_id) to join a multi-process run first."""
    if distributed is not None:
        mesh_lib.maybe_initialize_distributed(*distributed)
    output = os.fspath(output).rstrip("/")
    kind = output_kind(output)
    predictor = model if isinstance(model, Predictor) else load_predictor(model, num_devices=num_devices)
    source = open_source(input_, spacing, channel)
    try:
        return _segment(predictor, source, output, kind, mode, probabilities, instances, overwrite, max_tile, halo,
                        tuple(block), batch_size, ngff, progress)  # fmt: skip
    finally:
        source.close()


def _segment(predictor, source, output, kind, mode, probabilities, instances, overwrite, max_tile, halo, block,
             batch_size, ngff, show) -> dict:  # fmt: skip
    name = source.em.path
    if source.spacing is None and (kind == "zarr" or instances):
        need = "SY,SX" if source.ndim == 2 else "SZ,SY,SX"
        raise InputError(f"{name}: no voxel spacing in the file; pass --spacing={need} (nm), which the "
                         f"{'OME-Zarr metadata' if kind == 'zarr' else 'morphometrics'} need")  # fmt: skip
    mode = resolve_mode(mode or predictor.mode, source.ndim)
    grid = plan(source.shape, mode, max_tile=max_tile, halo=halo, block=block)
    key = {
        "model": predictor.identity, "input": source.identity, "mode": mode, "grid": [grid.block_shape,
        grid.tile_shape], "probabilities": probabilities, "format": ngff if kind == "zarr" else "tif",
        "channel": source.channel,
    }  # fmt: skip
    key = _plain(key)
    if kind == "zarr":
        store = ZarrOutput(output, shape=source.shape, ndim=source.ndim, outputs=predictor.outputs,
                           chunks=output_chunks(grid, mode), probabilities=probabilities, ngff=ngff)  # fmt: skip
        target = output
    else:
        store = TifOutput(output, shape=source.shape, ndim=source.ndim, outputs=predictor.outputs,
                          probabilities=probabilities, spacing=source.spacing)  # fmt: skip
        target = output
    lead = jax.process_index() == 0
    if lead:
        done = prepare(store.markers, target, key, overwrite)
        if not done and not os.path.isfile(os.path.join(store.markers, "job.json")):
            store.create(key)
    _barrier("segment: store ready")
    if not lead:
        done = prepare(store.markers, target, key, overwrite=False)
    store.open()
    blocks = grid.blocks()
    mine = [b for b in blocks if b.index % jax.process_count() == jax.process_index()]
    todo = [b for b in mine if b.index not in done]
    if lead and show:
        resumed = f"; resuming: {len(blocks) - len(todo)} done" if done else ""
        print(f"segment {name} {source.shape} → {output}: mode {mode}, {grid.describe()}{resumed}", flush=True)
    progress = Progress(len(mine), done=len(mine) - len(todo), label="segment", unit="blocks", enabled=show and lead)
    run_blocks(predictor, source, grid, store, todo, probabilities=probabilities, batch_size=batch_size,
               progress=progress)  # fmt: skip
    _barrier("segment: blocks written")
    out = {"output": output, "mode": mode, "blocks": len(blocks), "computed": len(todo), "resumed": bool(done),
           "spacing": source.spacing, "objects_csv": None, "objects": None}  # fmt: skip
    if lead:
        extra = ()
        if instances:
            out |= _instances(store, kind, predictor, source, output)
            extra = ("instances",) if kind == "zarr" else ()
        store.finish(predictor.classes, source.spacing, extra)
    _barrier("segment: finished")
    return out


def _instances(store, kind: str, predictor, source, output: str) -> dict:
    """Connected components of the written labels (every class but the background) and the objects CSV."""
    z, y, x = source.shape
    slab = max(1, INSTANCE_SLAB_VOXELS // (y * x))
    classes = range(1, max(2, predictor.outputs))
    if kind == "zarr":
        root = zarr.open_group(output, mode="r+")
        seg = root["labels/segmentation/0"]
        group = root["labels"].require_group("instances")
        if "0" in group:
            del group["0"]
        ids = group.create_array("0", shape=seg.shape, chunks=seg.chunks, dtype="uint32", fill_value=0)
    else:
        seg = tifffile.memmap(store.partial, mode="r").reshape(source.shape)
        partial = os.path.join(store.markers, "instances.tif")
        ids = tifffile.memmap(partial, shape=source.shape, dtype=np.uint32)  # ImageJ has no uint32
    text = label_instances(seg, ids, classes, slab=slab, class_names=predictor.classes, spacing=source.spacing,
                           ndim=3 if kind == "tif" else source.ndim)  # fmt: skip
    if kind == "tif":
        ids.flush()
        del ids, seg
        os.replace(partial, os.path.splitext(output)[0] + ".instances.tif")
    csv_path = write_objects_csv(output.rstrip("/") + ".objects.csv", text)
    return {"objects_csv": csv_path, "objects": text.count("\n") - 1}


def _plain(value):
    """Tuples → lists, so a key compares equal to the one read back from job.json."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
