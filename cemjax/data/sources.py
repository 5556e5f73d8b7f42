"""Random-access sources over a TFDS array_record build that return just the uint8 image (no TensorFlow), and
the shuffled, process-sharded batches every pretraining method reads.

`tfds.data_source` decodes every feature of an example in Python; the pretraining loop needs only the image.
`ImageSource` parses the record's protobuf (a few µs) and takes the image bytes and, for true-size patches
(`Tensor(shape=(None, None, C))`), their shape.
"""

from __future__ import annotations

import functools

import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

from cemjax.common.progress import Progress
from cemjax.data.built import data_source
from cemjax.data.canvas import place_on_canvas


class ImageSource:
    """grain RandomAccessDataSource: ``source[i]`` → {"image": uint8 [h, w, C]} for the i-th example of a split,
    at the size it was stored (CEM500K's edge patches are smaller than 224 × 224).

    Wraps the array_record reader of ``tfds.data_source(name, split=..., data_dir=...)`` (split slicing such as
    ``train[:90%]`` works); picklable, so grain worker processes can each open it. ``shape`` is the feature's
    declared shape, None where it varies.
    """

    def __init__(self, name: str, split: str, data_dir: str | None, feature: str = "image"):
        self._args = (name, split, data_dir, feature)
        tfds_source = data_source(name, split, data_dir)
        self._raw = tfds_source.data_source
        self.shape = tuple(tfds_source.dataset_info.features[feature].shape)
        self._feature = feature
        self._dynamic = sum(d is None for d in self.shape) > 1  # TFDS then stores value and shape apart

    def __reduce__(self):
        return ImageSource, self._args

    def __len__(self) -> int:
        return len(self._raw)

    def _decode(self, record: bytes) -> np.ndarray:
        features = tf_example_pb2.Example.FromString(record).features.feature
        if self._dynamic:
            value = features[f"{self._feature}/value"].bytes_list.value[0]
            shape = tuple(features[f"{self._feature}/shape"].int64_list.value)
        else:
            value, shape = features[self._feature].bytes_list.value[0], self.shape
        return np.frombuffer(value, np.uint8).reshape(shape)

    def __getitem__(self, index: int) -> dict:
        return {"image": self._decode(self._raw[int(index)])}

    def source_names(self, feature: str = "source") -> list[str]:
        """Every record's `feature` (CEM500K: the source dataset a patch was cut from), in record order. Reads
        the whole split once (about as long as one pass of the loader; a progress line says how far)."""
        progress = Progress(len(self), label=f"{self._args[0]} {feature}", unit="records", interval=10.0)
        names = []
        for start in range(0, len(self), 4096):
            stop = min(start + 4096, len(self))
            for record in self._raw.__getitems__(range(start, stop)):
                example = tf_example_pb2.Example.FromString(record).features.feature
                names.append(example[feature].bytes_list.value[0].decode())
            progress.update(stop)
        return names

    def __repr__(self) -> str:
        return f"ImageSource(name={self._args[0]!r}, split={self._args[1]!r}, n={len(self)})"


def source_balance_weights(source_ids, gamma: float) -> np.ndarray:
    """Sampling probability of every record: ∝ (1 / number of records of its source)^γ, normalised to sum to 1
    (docs/method.md §2.3). γ = 0: uniform; γ = 1: every source equally often. float64 [n]."""
    _, inverse, counts = np.unique(np.asarray(source_ids), return_inverse=True, return_counts=True)
    weights = (1.0 / counts.astype(np.float64)) ** float(gamma)
    per_record = weights[inverse.reshape(-1)]
    return per_record / per_record.sum()


class ShuffledBatches:
    """Random-access batches of an endlessly reshuffled dataset: ``batches[k]`` → {"image": uint8 [b, H, W, C],
    "valid": int32 [b, 2]} holding this process's rows of global batch k. Every image sits at the top-left of an
    H × W canvas (`canvas`, default the source's fixed shape) and "valid" holds its true (h, w); images larger
    than the canvas are cropped to their centre.

    Position p of the global stream is record ``perm_e[p mod n]`` of epoch e = p // n, perm_e a numpy
    permutation seeded by (seed, e). Global batch k is positions [kG, (k + 1)G); process i reads its rows
    [kG + i·b, kG + (i + 1)·b), b = G / process_count. So the global batch — and a training run — is the same
    whatever the number of processes, and processes never read the same position. Batches may straddle
    epochs. With `weights` (a probability per record, `source_balance_weights`), block e of n positions holds n
    records drawn with replacement from those probabilities, seeded by (seed, e) — the same for every process.
    Doing the shuffle and the stacking here (one numpy permutation per epoch, one preallocated array
    per batch) is what makes the host pipeline fast: grain's per-element index shuffle and batch tree-map cost
    more than the read.
    """

    small_sources_ok = False  # subclasses may allow sources smaller than a batch (records recur within it)

    def __init__(self, source, global_batch_size: int, seed: int, process_index: int = 0, process_count: int = 1,
                 num_epochs: int | None = None, canvas: tuple[int, int] | None = None,
                 weights: np.ndarray | None = None):  # fmt: skip
        if global_batch_size % process_count:
            raise ValueError(f"global batch {global_batch_size} is not divisible by {process_count} processes")
        self.source, self.global_batch_size, self.seed = source, global_batch_size, seed
        self.batch_size = global_batch_size // process_count
        self.offset = process_index * self.batch_size
        self.n = len(source)
        if self.n == 0 or (self.n < global_batch_size and not self.small_sources_ok):
            raise ValueError(f"{source!r} has {self.n} records, fewer than one global batch of {global_batch_size}")
        total = self.n * num_epochs if num_epochs is not None else 2**62
        self._len = total // global_batch_size
        self._args = (source, global_batch_size, seed, process_index, process_count, num_epochs, canvas, weights)
        self._cdf = None
        if weights is not None:
            weights = np.asarray(weights, np.float64)
            if weights.shape != (self.n,) or not np.all(weights >= 0) or not weights.sum() > 0:
                raise ValueError(f"sampling weights must be {self.n} non-negative numbers with a positive sum")
            self._cdf = np.cumsum(weights / weights.sum())
        shape = tuple(getattr(source, "shape", ()) or ())
        self.canvas = tuple(canvas) if canvas else tuple(shape[:2])
        self.channels = shape[2] if len(shape) > 2 and shape[2] else 1
        self._permutation = functools.lru_cache(maxsize=4)(self._make_permutation)  # thread-safe reads

    def __reduce__(self):
        return ShuffledBatches, self._args

    def __len__(self) -> int:
        return self._len

    def _make_permutation(self, epoch: int) -> np.ndarray:
        """The records of block `epoch`: a permutation, or with weights n weighted draws with replacement."""
        rng = np.random.default_rng([self.seed, epoch])
        if self._cdf is None:
            return rng.permutation(self.n)
        return np.minimum(np.searchsorted(self._cdf, rng.random(self.n), side="right"), self.n - 1)

    def record(self, position: int) -> int:
        """The record index at position `position` of the global stream."""
        epoch, i = divmod(position, self.n)
        return int(self._permutation(epoch)[i])

    def __getitem__(self, k: int) -> dict:
        if not 0 <= k < self._len:
            raise IndexError(k)
        if len(self.canvas) != 2 or None in self.canvas:
            raise ValueError(f"{self.source!r} stores images of varying size: give the batches a canvas=(H, W)")
        out = {"image": np.empty((self.batch_size, *self.canvas, self.channels), np.uint8),
               "valid": np.empty((self.batch_size, 2), np.int32)}  # fmt: skip
        first = k * self.global_batch_size + self.offset
        for j in range(self.batch_size):
            out["valid"][j] = place_on_canvas(self.source[self.record(first + j)]["image"], out["image"][j])
        return out
