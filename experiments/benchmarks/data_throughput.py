"""Host input pipeline throughput, array_record → uint8 [B, 224, 224, 1] batches, patches/s per core.

    python experiments/benchmarks/data_throughput.py [--data_dir DIR] [--patches 1024] [--seconds 5]

Without --data_dir, writes a fake CEM500K folder of --patches TIFFs and builds it in a temp dir. Compares
the pretraining loader (`batch_loader` over `ImageSource`: image sliced from the record) with the same grain
pipeline over `tfds.data_source` (every feature decoded by TFDS), both with one read thread and no worker
processes; run it under
`taskset -c 0` for a strict one-core number. Prints one table with the ratio to that baseline.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from pathlib import Path


def _rate(iterator, batch: int, seconds: float) -> float:
    next(iterator)
    t0, n = time.perf_counter(), 0
    for _ in itertools.takewhile(lambda _: time.perf_counter() - t0 < seconds, iterator):
        n += batch
    return n / (time.perf_counter() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data_dir")
    ap.add_argument("--patches", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args(argv)
    import grain
    import tensorflow_datasets as tfds

    import tfds_cem500k  # noqa: F401  (registers cem500k)
    from cemjax.data.build import build_cem500k
    from cemjax.data.pretrain import batch_loader
    from cemjax.data.sources import ImageSource
    from cemjax.data.testing import write_fake_cem500k

    data_dir, tmp = args.data_dir, None
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="cem500k_bench_"))
        write_fake_cem500k(tmp / "release", n=args.patches)
        data_dir = str(build_cem500k(tmp / "release", tmp / "tfds").parents[1])
    source = tfds.data_source("cem500k", split="train", data_dir=data_dir)
    read = grain.ReadOptions(num_threads=1, prefetch_buffer_size=2)
    baseline = (
        grain.MapDataset.source(source).shuffle(seed=0).repeat().map(lambda ex: {"image": ex["image"]})
        .batch(args.batch, drop_remainder=True).to_iter_dataset(read)
    )  # fmt: skip
    ours = batch_loader(ImageSource("cem500k", "train", data_dir), global_batch_size=args.batch, seed=0, read_threads=1)
    ref = _rate(iter(baseline), args.batch, args.seconds)
    mine = _rate(iter(ours), args.batch, args.seconds)
    print(f"{'pipeline (1 read thread, no workers)':<52} {'patches/s':>10} {'ratio':>7}")
    print(f"{'tfds.data_source → grain (all features decoded)':<52} {ref:>10.0f} {1.0:>7.2f}")
    print(f"{'cemjax batch_loader (image sliced from record)':<52} {mine:>10.0f} {mine / ref:>7.2f}")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
