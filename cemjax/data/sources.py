"""Random-access sources over a TFDS array_record build that return just the uint8 image (no TensorFlow).

`tfds.data_source` decodes every feature of an example in Python (~3,000 examples/s per core here); the
pretraining loop needs only the image. An example is a serialized tf.train.Example whose image is one
``bytes_list`` value of exactly H·W·C bytes ("bytes" Tensor encoding), so we slice it out of the record after
its protobuf header (field tag 0x0A + varint length) and fall back to a full protobuf parse if that header is
not where it must be. Text fields precede it only as valid UTF-8, which cannot contain the header's 0x80 byte
after 0x0A, and int fields are short varints, so the first match is the image.
"""

from __future__ import annotations

import functools

import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

from cemjax.data.built import data_source


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class ImageSource:
    """grain RandomAccessDataSource: ``source[i]`` → {"image": uint8 [H, W, C]} for the i-th example of a split.

    Wraps the array_record reader of ``tfds.data_source(name, split=..., data_dir=...)`` (split slicing such as
    ``train[:90%]`` works); picklable, so grain worker processes can each open it.
    """

    def __init__(self, name: str, split: str, data_dir: str | None, feature: str = "image"):
        self._args = (name, split, data_dir, feature)
        tfds_source = data_source(name, split, data_dir)
        self._raw = tfds_source.data_source
        spec = tfds_source.dataset_info.features[feature]
        self.shape = tuple(spec.shape)
        self._nbytes = int(np.prod(self.shape))
        self._header = b"\x0a" + _varint(self._nbytes)
        self._feature = feature

    def __reduce__(self):
        return ImageSource, self._args

    def __len__(self) -> int:
        return len(self._raw)

    def _decode(self, record: bytes) -> np.ndarray:
        start = record.find(self._header) + len(self._header)
        if start >= len(self._header) and start + self._nbytes <= len(record):
            return np.frombuffer(record, np.uint8, self._nbytes, start).reshape(self.shape)
        value = tf_example_pb2.Example.FromString(record).features.feature[self._feature].bytes_list.value[0]
        return np.frombuffer(value, np.uint8).reshape(self.shape)

    def __getitem__(self, index: int) -> dict:
        return {"image": self._decode(self._raw[int(index)])}

    def __repr__(self) -> str:
        return f"ImageSource(name={self._args[0]!r}, split={self._args[1]!r}, n={len(self)})"


class ShuffledBatches:
    """Random-access batches of an endlessly reshuffled dataset: ``batches[k]`` → {"image": uint8 [b, H, W, C]}
    holding this process's rows of global batch k.

    Position p of the global stream is record ``perm_e[p mod n]`` of epoch e = p // n, perm_e a numpy
    permutation seeded by (seed, e). Global batch k is positions [kG, (k + 1)G); process i reads its rows
    [kG + i·b, kG + (i + 1)·b), b = G / process_count. So the global batch — and a training run — is the same
    whatever the number of processes, and processes never read the same position. Batches may straddle
    epochs. Doing the shuffle and the stacking here (one numpy permutation per epoch, one preallocated array
    per batch) is what makes the host pipeline fast: grain's per-element index shuffle and batch tree-map cost
    more than the read.
    """

    small_sources_ok = False  # subclasses may allow sources smaller than a batch (records recur within it)

    def __init__(self, source, global_batch_size: int, seed: int, process_index: int = 0, process_count: int = 1,
                 num_epochs: int | None = None):  # fmt: skip
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
        self._args = (source, global_batch_size, seed, process_index, process_count, num_epochs)
        self._permutation = functools.lru_cache(maxsize=4)(self._make_permutation)  # thread-safe reads

    def __reduce__(self):
        return ShuffledBatches, self._args

    def __len__(self) -> int:
        return self._len

    def _make_permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def _record(self, position: int) -> int:
        epoch, i = divmod(position, self.n)
        return int(self._permutation(epoch)[i])

    def __getitem__(self, k: int) -> dict:
        if not 0 <= k < self._len:
            raise IndexError(k)
        out = np.empty((self.batch_size, *self.source.shape), np.uint8)
        first = k * self.global_batch_size + self.offset
        for j in range(self.batch_size):
            out[j] = self.source[self._record(first + j)]["image"]
        return {"image": out}
