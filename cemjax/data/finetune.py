"""grain input pipeline for fine-tuning: random crops with masks from a `cem_benchmarks` array_record build.

2D configs crop their images; 3D configs (guay, urocell, cremi) crop 2D planes of their volumes along the
benchmark's slicing axes (`layout.slice_axes` in `cemjax.benchmarks`), as the reference trains on slices. The
host only crops and batches; :func:`cemjax.data.augment_seg.seg_augment` does the rest on the accelerator, taking the
``valid`` sizes so that images smaller than the crop are padded by reflection there, as the reference does.
"""

from __future__ import annotations

import numpy as np

from cemjax.benchmarks import get
from cemjax.data.built import data_source
from cemjax.data.sources import ShuffledBatches


class Planes:
    """Random-access 2D training planes of one split: ``planes[i]`` → (image, mask), uint8 [h, w] each.

    2D configs read example i through ``tfds.data_source`` (no TensorFlow); 3D configs load the split's
    volumes once (per process) and index every plane (volume, SimpleITK axis, index) of ``axes`` (default:
    the benchmark's slicing axes). Picklable: grain workers reopen it.
    """

    def __init__(self, config: str, split: str, data_dir: str | None, axes: tuple[int, ...] | None = None):
        self._args = (config, split, data_dir, axes)
        layout = get(config).layout
        self._source = data_source(f"cem_benchmarks/{config}", split, data_dir)
        self._volumes = None
        if layout.kind == "3d":
            self._volumes = [(ex["image"], ex["labels"]) for ex in (self._source[i] for i in range(len(self._source)))]
            axes = layout.slice_axes if axes is None else axes
            self._index = np.array(
                [(v, a, k) for v, (im, _) in enumerate(self._volumes) for a in axes for k in range(im.shape[2 - a])],
                np.int64,
            )

    def __reduce__(self):
        return Planes, self._args

    def __len__(self) -> int:
        return len(self._source) if self._volumes is None else len(self._index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._volumes is None:
            ex = self._source[int(i)]
            return ex["image"][..., 0], ex["mask"][..., 0]
        v, axis, k = (int(t) for t in self._index[i])
        image, labels = self._volumes[v]
        return np.take(image, k, axis=2 - axis), np.take(labels, k, axis=2 - axis)

    def max_side(self) -> int:
        """The longest side of any plane, px (2D splits decode every image once)."""
        if self._volumes is not None:
            axes = {int(a) for a in self._index[:, 1]}
            return max(d for im, _ in self._volumes for a in axes for i, d in enumerate(im.shape) if i != 2 - a)
        return max(max(self[i][0].shape) for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Planes(config={self._args[0]!r}, split={self._args[1]!r}, n={len(self)})"


class CropBatches(ShuffledBatches):
    """``batches[k]`` → this process's rows of global batch k: {"image", "mask": uint8 [b, C, C, 1], "valid":
    int32 [b, 2]}. Records are ordered as in :class:`ShuffledBatches` (seeded reshuffle every epoch, independent
    of the process count); stream position p draws its crop's top-left uniformly from
    ``np.random.default_rng([seed, 1, p])``, so a batch never depends on who reads it. A plane smaller than
    C along an axis is kept whole there, at the top-left, zero-filled; ``valid`` holds its (h, w) in the crop.
    A split with fewer planes than a batch is allowed (a batch then holds different crops of one plane)."""

    small_sources_ok = True

    def __init__(self, planes, crop_size: int, global_batch_size: int, seed: int, process_index: int = 0,
                 process_count: int = 1, num_epochs: int | None = None):  # fmt: skip
        super().__init__(planes, global_batch_size, seed, process_index, process_count, num_epochs)
        self.crop_size = crop_size
        self._crop_args = (planes, crop_size, global_batch_size, seed, process_index, process_count, num_epochs)

    def __reduce__(self):
        return CropBatches, self._crop_args

    def crop(self, position: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """The crop at one stream position: (image, mask) uint8 [h', w'] with h', w' ≤ crop_size, and (h', w')."""
        image, mask = self.source[self.record(position)]
        if image.shape != mask.shape:
            raise ValueError(f"{self.source!r}: image {image.shape} and mask {mask.shape} differ at {position}")
        rng = np.random.default_rng([self.seed, 1, position])
        c = self.crop_size
        y0 = int(rng.integers(max(image.shape[0] - c, 0) + 1))
        x0 = int(rng.integers(max(image.shape[1] - c, 0) + 1))
        image, mask = image[y0 : y0 + c, x0 : x0 + c], mask[y0 : y0 + c, x0 : x0 + c]
        return image, mask, image.shape

    def __getitem__(self, k: int) -> dict:
        if not 0 <= k < len(self):
            raise IndexError(k)
        c = self.crop_size
        out = {
            "image": np.zeros((self.batch_size, c, c, 1), np.uint8),
            "mask": np.zeros((self.batch_size, c, c, 1), np.uint8),
            "valid": np.zeros((self.batch_size, 2), np.int32),
        }
        first = k * self.global_batch_size + self.offset
        for j in range(self.batch_size):
            image, mask, (h, w) = self.crop(first + j)
            out["image"][j, :h, :w, 0], out["mask"][j, :h, :w, 0] = image, mask
            out["valid"][j] = h, w
        return out


__all__ = ["CropBatches", "Planes"]
