"""Pretraining input for every method: uint8 patch batches per process, from a `cem500k` build or synthetic.

`config.data.source="tfds"` reads a built `cem500k`'s array_record files (`ImageSource`, no TensorFlow);
`"synthetic"` draws patches from the synthetic EM world in memory (the offline default of the demo and the
tests). The host only reads and batches; augmentation runs on the accelerator. Iterators are grain
DatasetIterators, checkpointable with Orbax.
"""

from __future__ import annotations

import grain
import numpy as np
from absl import flags

from cemjax.data.sources import ImageSource, ShuffledBatches, source_balance_weights
from cemjax.synthetic import STYLES, make_em_image

DATA_SOURCES = ("tfds", "synthetic")


class SyntheticPatches:
    """A random-access source of `n` uint8 [size, size, 1] EM patches cut from synthetic images (deterministic)."""

    def __init__(self, n: int, size: int, seed: int = 0):
        per_image = max(1, (512 // size) ** 2)
        patches = []
        for i in range(-(-n // per_image)):
            style = sorted(STYLES)[i % len(STYLES)]
            image = make_em_image((512, 512), pixel_nm=8.0, style=style, seed=seed * 7919 + i).image
            tiles = image[: 512 // size * size, : 512 // size * size]
            tiles = tiles.reshape(512 // size, size, 512 // size, size).swapaxes(1, 2).reshape(-1, size, size)
            patches.append(tiles)
        self.patches = np.concatenate(patches)[:n, :, :, None].astype(np.uint8)
        self.shape = self.patches.shape[1:]
        self._per_image = per_image

    def source_names(self) -> list[str]:
        """The synthetic image each patch was cut from (its "source")."""
        return [f"synthetic_image{i // self._per_image}" for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.patches[index]}


def make_source(config):
    """The random-access patch source `config.data` names (a TFDS build or synthetic patches)."""
    if config.data.source == "tfds":
        return ImageSource(config.data.dataset, config.data.split, config.data.data_dir or None)
    if config.data.source == "synthetic":
        return SyntheticPatches(config.data.synthetic_patches, config.image_size, seed=config.seed)
    raise ValueError(f"data.source must be one of {DATA_SOURCES}, got {config.data.source!r}")


def make_loader(config, *, process_index: int, process_count: int):
    """(iterable dataset yielding {"image": uint8 [b_local, C, C, 1], "valid": int32 [b_local, 2]}, its
    random-access source) for `config.data`. Patches stored at their true size sit on a `data.canvas` square.
    `data.balance_gamma` γ > 0 samples every patch with probability ∝ (1 / patches of its source)^γ
    (`source_balance_weights`); 0 reads every patch once per epoch in a seeded shuffle."""
    source = make_source(config)
    varying = None in tuple(source.shape)
    gamma = float(config.data.get("balance_gamma", 0.0))
    if gamma < 0:
        raise ValueError(f"data.balance_gamma={gamma} must be ≥ 0 (0 = uniform, 0.5 = the SwAV recipe)")
    weights = source_balance_weights(source.source_names(), gamma) if gamma > 0 else None
    loader = batch_loader(
        source,
        global_batch_size=config.batch_size,
        seed=config.seed,
        process_index=process_index,
        process_count=process_count,
        worker_count=config.data.worker_count,
        canvas=(config.data.canvas, config.data.canvas) if varying else None,
        weights=weights,
    )
    return loader, source


def batch_loader(
    source,
    *,
    global_batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    worker_count: int = 0,
    num_epochs: int | None = None,
    read_threads: int = 4,
    canvas: tuple[int, int] | None = None,
    weights: np.ndarray | None = None,
) -> grain.IterDataset:
    """This process's rows of every global batch of a random-access `source` (records {"image": uint8 array},
    attribute `shape`) as {"image": uint8 [b, H, W, C], "valid": int32 [b, 2]} (see `ShuffledBatches`; `canvas`
    is needed when the source's images vary in size; `weights`, a probability per record, for weighted draws
    with replacement instead of a permutation): seeded shuffle (a new permutation every epoch), repeated
    `num_epochs` times (None: forever), the last partial batch dropped. The global batch does not depend on
    `process_count` (`ShuffledBatches`); `worker_count` > 0 reads in that many worker processes (grain
    `mp_prefetch`).

    Built with grain's dataset API rather than `grain.DataLoader`: there, each worker batches its own
    records, so batch contents change with the worker count; here batch k is defined on the global index
    space. `iter(loader)` gives a grain DatasetIterator whose state Orbax saves with
    `grain.checkpoint.CheckpointSave(iterator)` (inside `ocp.args.Composite`) and restores with
    `grain.checkpoint.CheckpointRestore(iterator)`.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} outside [0, {process_count})")
    batches = ShuffledBatches(
        source, global_batch_size, seed, process_index, process_count, num_epochs, canvas, weights
    )
    return iterate_batches(batches, worker_count=worker_count, read_threads=read_threads)


def iterate_batches(batches, *, worker_count: int = 0, read_threads: int = 4, prefetch: int = 2) -> grain.IterDataset:
    """A random-access sequence of ready batches → a grain IterDataset (threaded reads, and `worker_count`
    worker processes when > 0) whose iterator state Orbax can checkpoint."""
    out = grain.MapDataset.source(batches).to_iter_dataset(
        grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=max(prefetch, read_threads))
    )
    if worker_count > 0:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; outside an absl app take the defaults
            flags.FLAGS.mark_as_parsed()
        out = out.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return out
