"""Pretraining input: a grain IterDataset per process yielding {"image": uint8 [b_local, H, W, 1]}.

`data.source="tfds"` reads a built `cem500k`'s array_record files (`ImageSource`, no TensorFlow).
`data.source="synthetic"` draws patches from the synthetic EM world in memory — the offline
default of the demo and the tests. Both loaders have checkpointable iterators (grain + Orbax).
"""

from __future__ import annotations

import numpy as np

from cemjax.data.pretrain import batch_loader
from cemjax.data.sources import ImageSource


class SyntheticPatches:
    """A random-access source of `n` uint8 [size, size, 1] EM patches cut from synthetic images (deterministic)."""

    def __init__(self, n: int, size: int, seed: int = 0):
        from cemjax.synthetic import STYLES, make_em_image

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

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.patches[index]}


def tfds_source(dataset: str, split: str, data_dir: str | None) -> ImageSource:
    """The built dataset's array_record files (no TensorFlow), with the build command on failure."""
    try:
        return ImageSource(dataset, split, data_dir)
    except Exception as err:  # tfds raises several types for "not built"
        where = data_dir or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"dataset {dataset!r} split {split!r} is not built in {where} ({type(err).__name__}: {err}). Build it: "
            f"python -m cemjax.data.build {dataset} --manual_dir=PATCH_FOLDER --data_dir={where}"
        ) from err


def make_loader(config, *, process_index: int, process_count: int):
    """(iterable dataset yielding {"image": uint8 [b_local, H, W, 1]}, number of records) for `config.data`."""
    if config.data.source == "tfds":
        source = tfds_source(config.data.dataset, config.data.split, config.data.data_dir or None)
    elif config.data.source == "synthetic":
        source = SyntheticPatches(config.data.synthetic_patches, config.image_size, seed=config.seed)
    else:
        raise ValueError(f"data.source must be 'tfds' or 'synthetic', got {config.data.source!r}")
    loader = batch_loader(
        source,
        global_batch_size=config.batch_size,
        seed=config.seed,
        process_index=process_index,
        process_count=process_count,
        worker_count=config.data.worker_count,
    )
    return loader, len(source)
