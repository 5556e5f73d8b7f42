"""`load_predictor(model_dir)`: a fine-tuned model directory (spec.json + state/ + model.json) as something you
call on an array, and the per-block prediction `cemjax.segment` runs.

    predictor = cemjax.load_predictor("runs/mine/model")
    labels = predictor(volume)                        # uint8 [Z, Y, X] (or [H, W]) class indices
    labels, probs = predictor(volume, probabilities=True)   # probs uint8 [C, Z, Y, X]: ⌊p · 255⌋

The forward pass runs jitted on a 1-axis `data` mesh of this process's devices (`cemjax.train.mesh`), batches
split across them. Probabilities are quantised as the paper's evaluation does (⌊p · 255 / n_axes⌋ per predicted
axis, summed in uint8; labels: > ⌊255 · threshold⌋ for one output, else the first argmax).
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np

from cemjax.common.errors import InputError
from cemjax.convert.flax_checkpoint import load_model
from cemjax.seg.forward import eval_split, make_quantised_forward
from cemjax.seg.model_info import FILE, ModelInfo, read_model_info
from cemjax.segment.engine import segment_array
from cemjax.train import mesh as mesh_lib

PIXELS_PER_BATCH = 1 << 22  # ~4 M input pixels per forward call: 16 × 512² or 4 × 1024² tiles
MAX_BATCH = 32


class Predictor:
    """A loaded model: `info` (model.json), `classes`, `outputs`, `mode`; call it on an array."""

    def __init__(self, model, info: ModelInfo, identity: str, num_devices: int = -1):
        self.info, self.identity = info, identity
        graph, variables = eval_split(model)
        self.mesh = mesh_lib.make_data_mesh(num_devices, local=True)
        self.num_devices = self.mesh.shape[mesh_lib.DATA]
        self._variables = jax.device_put(variables, mesh_lib.replicated(self.mesh))
        self._sharding = mesh_lib.data_sharding(self.mesh)
        self._forward = make_quantised_forward(graph, info.norms)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def outputs(self) -> int:
        return self.info.outputs

    @property
    def mode(self) -> str:
        return self.info.eval_mode

    def batch_size(self, height: int, width: int, requested: int = 0) -> int:
        """Slices per forward call for tiles of height × width: `requested`, or ~4 M pixels' worth; a multiple
        of the device count."""
        n = requested or max(1, min(MAX_BATCH, PIXELS_PER_BATCH // max(1, height * width)))
        return -(-n // self.num_devices) * self.num_devices

    def quantised(self, x: np.ndarray, scale: float) -> np.ndarray:
        """x float32 [B, H, W, 1] in [0, 1] (B a multiple of the device count) → uint8 [B, H, W, C]."""
        return np.asarray(self._forward(self._variables, jax.device_put(x, self._sharding), float(scale)))

    def predict_block(self, tile: np.ndarray, owned, axes: tuple[int, ...], batch: int = 0) -> np.ndarray:
        """Summed quantised probabilities uint8 [C, oz, oy, ox] of the `owned` part (slices) of a padded tile
        uint8 [tz, ty, tx], from the planes across each axis of `axes` inside the owned range."""
        scale = 255.0 / len(axes)
        acc = None
        for a in axes:
            planes = np.moveaxis(tile, a, 0)[owned[a]]  # [n, h, w]
            inner = tuple(owned[i] for i in range(3) if i != a)
            n, h, w = planes.shape
            b = self.batch_size(h, w, batch)
            part = np.empty((n, inner[0].stop - inner[0].start, inner[1].stop - inner[1].start, self.outputs),
                            np.uint8)  # fmt: skip
            for s in range(0, n, b):
                chunk = planes[s : s + b]
                x = np.zeros((b, h, w, 1), np.float32)
                x[: len(chunk), :, :, 0] = chunk
                x *= np.float32(1 / 255)  # as cemjax.seg.inference scales slices
                part[s : s + len(chunk)] = self.quantised(x, scale)[: len(chunk), inner[0], inner[1]]
            q = np.moveaxis(np.moveaxis(part, -1, 0), 1, a + 1)  # [C, oz, oy, ox]
            acc = q if acc is None else acc + q  # ≤ 3 · ⌊255 / 3⌋: no overflow
        return np.ascontiguousarray(acc)

    def labels(self, acc: np.ndarray) -> np.ndarray:
        """uint8 labels [...] of summed quantised probabilities [C, ...]."""
        if acc.shape[0] == 1:
            return (acc[0] > int(255 * self.info.threshold)).astype(np.uint8)
        return np.argmax(acc, axis=0).astype(np.uint8)

    def __call__(self, image: np.ndarray, *, mode: str | None = None, probabilities: bool = False, **plan):
        """Labels of a 2D image [H, W] or volume [Z, Y, X] (any dtype `cemjax.io.to_uint8` converts), blockwise as
        `cemjax.segment` runs it (`plan`: max_tile, halo, block, batch_size); with `probabilities`, also
        uint8 [C, …] (⌊p · 255⌋)."""
        return segment_array(self, np.asarray(image), mode=mode, probabilities=probabilities, **plan)


def model_identity(model_dir: str) -> str:
    """A hash of model.json, spec.json and the weight files' names and sizes: what resumed outputs check."""
    h = hashlib.sha256()
    for name in (FILE, "spec.json"):
        with open(os.path.join(model_dir, name), "rb") as f:
            h.update(f.read())
    for root, _, files in sorted(os.walk(os.path.join(model_dir, "state"))):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(f"{os.path.relpath(path, model_dir)}:{os.path.getsize(path)}".encode())
    return h.hexdigest()[:20]


def load_predictor(model_dir: str | os.PathLike, *, num_devices: int = -1) -> Predictor:
    """The Predictor of a model directory; InputError (one line) for a directory without model.json, with a
    spec that is not a UNet or does not build, or whose weights do not fit its spec."""
    model_dir = os.fspath(model_dir)
    info = read_model_info(model_dir)
    try:
        model, _ = load_model(model_dir)
    except Exception as e:  # noqa: BLE001  (Orbax and the model builder raise many types; all mean the same)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputError(f"{model_dir}/state does not hold the weights spec.json describes ({first})") from e
    return Predictor(model, info, model_identity(model_dir), num_devices)
