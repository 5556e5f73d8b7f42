"""The block loop of `cemjax.segment`: read a block's tile, predict it, write the owned part, mark it done.

Reading the next tile and writing the last result run on two threads while the device computes, so the loop
holds at most two tiles and two results: memory follows the block, not the volume.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cemjax.common.progress import Progress
from cemjax.segment.grid import Block, Grid, plan
from cemjax.segment.source import VolumeSource, open_source


def resolve_mode(mode: str, ndim: int) -> str:
    """A 2D image is always "2d"; a volume takes "stack" (also for a model trained on 2D images) or "orthoplane"."""
    if ndim == 2:
        if mode == "orthoplane":
            raise ValueError("mode orthoplane needs a 3D volume; a 2D image is segmented in mode 2d")
        return "2d"
    if mode not in ("2d", "stack", "orthoplane"):
        raise ValueError(f"mode {mode!r}: use 2d, stack or orthoplane")
    return "stack" if mode == "2d" else mode


def read_tile(source: VolumeSource, grid: Grid, block: Block) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """(uint8 tile [tz, ty, tx] reflection-padded at the bottom/right as the plan says, owned slices inside it)."""
    windows = grid.windows(block)
    tile = source.read(*(slice(w[0], w[1]) for w in windows))
    pads = [(0, w[2]) for w in windows]
    if any(p for _, p in pads):
        tile = np.pad(tile, pads, mode="reflect")
    return tile, tuple(w[3] for w in windows)


def run_blocks(predictor, source: VolumeSource, grid: Grid, sink, todo: list[Block], *, probabilities: bool,
               batch_size: int = 0, progress: Progress | None = None) -> int:  # fmt: skip
    """Predict and write every block of `todo` into `sink` (`write(block, labels, probs)`, `mark_done(index)`)."""
    if not todo:
        return 0
    done = progress.done if progress is not None else 0

    def write(block, labels, acc):
        sink.write(block, labels, acc if probabilities else None)
        sink.mark_done(block.index)

    with ThreadPoolExecutor(2, thread_name_prefix="segment-io") as pool:
        next_tile, pending = pool.submit(read_tile, source, grid, todo[0]), None
        for i, block in enumerate(todo):
            tile, owned = next_tile.result()
            if i + 1 < len(todo):
                next_tile = pool.submit(read_tile, source, grid, todo[i + 1])
            acc = predictor.predict_block(tile, owned, grid.predicted, batch_size)
            labels = predictor.labels(acc)
            if pending is not None:
                pending.result()
            pending = pool.submit(write, block, labels, acc)
            if progress is not None:
                progress.update(done + i + 1)
        pending.result()
    return len(todo)


class ArraySink:
    """Blocks written into in-memory arrays: labels uint8 [Z, Y, X], probs uint8 [C, Z, Y, X] (or None)."""

    def __init__(self, shape, outputs: int, probabilities: bool):
        self.labels = np.zeros(shape, np.uint8)
        self.probs = np.zeros((outputs, *shape), np.uint8) if probabilities else None

    def write(self, block: Block, labels: np.ndarray, probs: np.ndarray | None) -> None:
        self.labels[block.owned] = labels
        if probs is not None:
            self.probs[(slice(None), *block.owned)] = probs

    def mark_done(self, index: int) -> None:
        del index


def segment_array(predictor, image: np.ndarray, *, mode: str | None = None, probabilities: bool = False,
                  max_tile: int | None = None, halo: int = 32, block=(None,) * 3, batch_size: int = 0):  # fmt: skip
    """`Predictor.__call__`: blockwise labels (and probabilities) of an in-memory 2D/3D array."""
    source = open_source(image)
    mode = resolve_mode(mode or predictor.mode, source.ndim)
    grid = plan(source.shape, mode, max_tile=max_tile, halo=halo, block=tuple(block))
    sink = ArraySink(source.shape, predictor.outputs, probabilities)
    run_blocks(predictor, source, grid, sink, grid.blocks(), probabilities=probabilities, batch_size=batch_size)
    labels = sink.labels[0] if source.ndim == 2 else sink.labels
    if not probabilities:
        return labels
    return labels, (sink.probs[:, 0] if source.ndim == 2 else sink.probs)
