"""grain input pipeline for MoCoV2 pretraining: uint8 patch batches from the `cem500k` array_record build.

The host only reads and batches; augmentation runs on the accelerator (:mod:`cemjax.data.augment`).
"""

from __future__ import annotations

import grain

from cemjax.data.sources import ImageSource, ShuffledBatches


def make_pretrain_loader(
    data_dir: str,
    *,
    split: str = "train",
    global_batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    worker_count: int = 0,
    num_epochs: int | None = None,
    dataset_name: str = "cem500k",
    read_threads: int = 4,
) -> grain.IterDataset:
    """Batches {"image": uint8 [global_batch_size // process_count, 224, 224, 1]} for this process, read from
    the `dataset_name` array_record build in `data_dir` (see `batch_loader` for the ordering)."""
    return batch_loader(
        ImageSource(dataset_name, split, data_dir),
        global_batch_size=global_batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
        worker_count=worker_count,
        num_epochs=num_epochs,
        read_threads=read_threads,
    )


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
) -> grain.IterDataset:
    """This process's rows of every global batch of a random-access `source` (records {"image": uint8 array},
    attribute `shape`): seeded shuffle (a new permutation every epoch), repeated `num_epochs` times (None:
    forever), the last partial batch dropped. The global batch does not depend on `process_count`
    (`ShuffledBatches`); `worker_count` > 0 reads in that many worker processes (grain `mp_prefetch`).

    Built with grain's dataset API rather than `grain.DataLoader`: there, each worker batches its own
    records, so batch contents change with the worker count; here batch k is defined on the global index
    space. `iter(loader)` gives a grain DatasetIterator whose state Orbax saves with
    `grain.checkpoint.CheckpointSave(iterator)` (inside `ocp.args.Composite`) and restores with
    `grain.checkpoint.CheckpointRestore(iterator)`.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} outside [0, {process_count})")
    batches = ShuffledBatches(source, global_batch_size, seed, process_index, process_count, num_epochs)
    return iterate_batches(batches, worker_count=worker_count, read_threads=read_threads)


def iterate_batches(batches, *, worker_count: int = 0, read_threads: int = 4, prefetch: int = 2) -> grain.IterDataset:
    """A random-access sequence of ready batches → a grain IterDataset (threaded reads, and `worker_count`
    worker processes when > 0) whose iterator state Orbax can checkpoint."""
    out = grain.MapDataset.source(batches).to_iter_dataset(
        grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch)
    )
    if worker_count > 0:
        _absl_flags_parsed()
        out = out.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return out


def _absl_flags_parsed() -> None:
    """grain's worker processes read absl flags; outside an absl app (pytest, notebooks) accept the defaults."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
