"""Model-agnostic 2D and 3D inference as the CEM500K evaluation scripts run it (docs/method.md §5).

The model is a `predict_fn(x) -> logits`: x float32 [B, H, W, 1] with gray values in [0, 1] (uint8 / 255; the
function does its own normalisation), H and W multiples of 32; logits float32 [B, H, W, C] (numpy or jax). C == 1
is a binary model (sigmoid, foreground where probability > threshold), C > 1 a multi-class one (softmax, argmax).

2D (`inference2d.py`): the image is resized DOWN to ⌊H/32⌋·32 × ⌊W/32⌋·32 with OpenCV's INTER_LINEAR (the
reference's albumentations resize calls cv2.resize; the same function here, so the model sees the same
pixels), predicted, and the label map is resized back to H × W with nearest neighbour (skimage
`resize(order=0)`, as the reference).

3D (`inference3d.py`): every slice is reflection-padded at the bottom/right to multiples of 32 and the logits
cropped back. "stack" predicts the xy slices (axis 0); "orthoplane" predicts the slices along axes 0, 1 and 2
(slice layouts [H, W], [D, W], [D, H]) and sums ⌊p · 255 / 3⌋ per class into uint8 accumulators
(C × [D, H, W]); binary: accumulator > ⌊255 · threshold⌋ (127), multi-class: argmax over the accumulator (first
class on ties). ⌊·⌋ is an explicit floor: a float → uint8 cast may round under XLA, and the reference truncates.
Stack mode gives the same result without an accumulator (⌊p · 255⌋ per slice). Slices are streamed in batches, so
besides the volume only the C-byte-per-voxel accumulator (which becomes the output; stack: the 1-byte output) and
one batch are held in memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from skimage.transform import resize

PredictFn = Callable[[np.ndarray], "np.ndarray | jax.Array"]
ProgressFn = Callable[[int, int], None]
FACTOR = 32


def probabilities(logits: np.ndarray | jax.Array) -> jax.Array:
    """Class probabilities from logits [..., C]: sigmoid if C == 1, else softmax over the last axis (float32)."""
    logits = jnp.asarray(logits, jnp.float32)
    return jax.nn.sigmoid(logits) if logits.shape[-1] == 1 else jax.nn.softmax(logits, axis=-1)


def labels_from_logits(logits: np.ndarray | jax.Array, threshold: float = 0.5) -> np.ndarray:
    """Label map from logits [..., C] → uint8 [...]: sigmoid > threshold if C == 1, else argmax."""
    logits = jnp.asarray(logits, jnp.float32)
    if logits.shape[-1] == 1:
        labels = jax.nn.sigmoid(logits[..., 0]) > threshold
    else:
        labels = jnp.argmax(logits, axis=-1)
    return np.asarray(labels).astype(np.uint8)


def factor_shape(height: int, width: int, factor: int = FACTOR) -> tuple[int, int]:
    """2D eval size: each side floored to a multiple of `factor` (raised to `factor` for sides shorter than it)."""
    return max(factor, height // factor * factor), max(factor, width // factor * factor)


def resize_linear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """cv2.resize(INTER_LINEAR) of uint8 [H, W] → uint8 [height, width], as the reference's evaluation resizes."""
    if image.shape == (height, width):
        return image
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR)


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a label map [h, w] → uint8 [height, width] (skimage resize, order 0)."""
    if labels.shape == (height, width):
        return labels.astype(np.uint8, copy=False)
    out = resize(labels, (height, width), order=0, anti_aliasing=False, preserve_range=True)
    return out.astype(np.uint8)


def predict_2d(predict_fn: PredictFn, image: np.ndarray, num_classes: int, threshold: float = 0.5) -> np.ndarray:
    """Label map of one 2D image. image: uint8 [H, W] → uint8 [H, W] with values in 0 .. max(1, num_classes - 1)."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W], got {image.dtype} {image.shape}")
    height, width = image.shape
    small = resize_linear(image, *factor_shape(height, width))
    x = (small.astype(np.float32) / np.float32(255.0))[None, :, :, None]
    logits = predict_fn(x)
    if tuple(logits.shape) != (1, *small.shape, num_classes):
        raise ValueError(f"predict_fn returned {tuple(logits.shape)}, expected {(1, *small.shape, num_classes)}")
    return resize_labels(labels_from_logits(logits, threshold)[0], height, width)


def pad_to_factor(slices: np.ndarray, factor: int = FACTOR) -> np.ndarray:
    """Reflection-pad [B, h, w] at the bottom and right so h and w are multiples of `factor` (torch ReflectionPad2d,
    i.e. numpy mode "reflect"; pads longer than the side reflect repeatedly)."""
    _, h, w = slices.shape
    pads = ((0, 0), (0, -h % factor), (0, -w % factor))
    return np.pad(slices, pads, mode="reflect") if any(p for _, p in pads) else slices


@functools.partial(jax.jit, static_argnames=("height", "width", "scale"))
def _quantized_probabilities(logits: jax.Array, height: int, width: int, scale: float) -> jax.Array:
    """⌊probability · scale⌋ as uint8 [B, height, width, C] from padded logits [B, H', W', C] (cropped)."""
    probs = probabilities(logits[:, :height, :width, :])
    return jnp.floor(probs * jnp.float32(scale)).astype(jnp.uint8)  # in [0, scale] ⊂ [0, 255]: truncated


def _batches(volume: np.ndarray, axis: int, batch_size: int):
    """Yield (start, float32 [batch_size, h', w', 1] padded input, n valid) for the slices along `axis`."""
    planes = np.moveaxis(volume, axis, 0)  # view: [n, h, w]
    n = planes.shape[0]
    for start in range(0, n, batch_size):
        chunk = planes[start : start + batch_size]
        count = chunk.shape[0]
        if count < batch_size:  # keep one static batch shape so a jitted predict_fn compiles once per axis
            chunk = np.concatenate([chunk, np.zeros((batch_size - count, *chunk.shape[1:]), chunk.dtype)])
        x = pad_to_factor(chunk).astype(np.float32)
        x *= np.float32(1 / 255)
        yield start, x[..., None], count


def _run(predict_fn: PredictFn, x: np.ndarray, height: int, width: int, num_classes: int, scale: float):
    logits = predict_fn(x)
    expected = (x.shape[0], x.shape[1], x.shape[2], num_classes)
    if tuple(logits.shape) != expected:
        raise ValueError(f"predict_fn returned {tuple(logits.shape)}, expected {expected}")
    return np.asarray(_quantized_probabilities(logits, height, width, scale))  # uint8 [B, h, w, C]


def predict_volume(
    predict_fn: PredictFn,
    volume: np.ndarray,
    num_classes: int,
    mode: str = "stack",
    batch_size: int = 8,
    threshold: float = 0.5,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Label volume of a uint8 [D, H, W] volume → uint8 [D, H, W] ("stack" or "orthoplane" inference).

    batch_size: slices per predict_fn call (the last batch is zero-filled to this size). progress: called as
    progress(done_slices, total_slices) after every batch. Extra memory: stack, the uint8 output (D·H·W bytes);
    orthoplane, uint8 accumulators (num_classes·D·H·W bytes, the labels overwrite class 0's, the rest are freed);
    plus one batch of padded float32 slices and its logits.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3 or volume.dtype != np.uint8:
        raise ValueError(f"volume must be uint8 [D, H, W], got {volume.dtype} {volume.shape}")
    if mode not in ("stack", "orthoplane"):
        raise ValueError(f"mode must be 'stack' or 'orthoplane', got {mode!r}")
    if batch_size < 1 or num_classes < 1:
        raise ValueError("batch_size and num_classes must be >= 1")
    axes = (0,) if mode == "stack" else (0, 1, 2)
    scale = 255.0 / len(axes)
    cut = int(255 * threshold)
    total, done = sum(volume.shape[a] for a in axes), 0

    if mode == "stack":  # one contribution per voxel: decide slice by slice, no accumulator needed
        out = np.empty(volume.shape, np.uint8)
        for start, x, count in _batches(volume, 0, batch_size):
            q = _run(predict_fn, x, volume.shape[1], volume.shape[2], num_classes, scale)[:count]
            out[start : start + count] = (q[..., 0] > cut) if num_classes == 1 else np.argmax(q, axis=-1)
            done += count
            if progress is not None:
                progress(done, total)
        return out

    # one separate uint8 [D, H, W] buffer per class: the labels overwrite class 0's buffer and the others are
    # freed, so the peak is num_classes volumes (not num_classes + 1) and the result owns only its own buffer
    acc = [np.zeros(volume.shape, np.uint8) for _ in range(num_classes)]
    for axis in axes:
        height, width = (s for a, s in enumerate(volume.shape) if a != axis)
        targets = [np.moveaxis(a, axis, 0) for a in acc]  # views [n, h, w]
        for start, x, count in _batches(volume, axis, batch_size):
            q = _run(predict_fn, x, height, width, num_classes, scale)[:count]  # [count, h, w, C]
            for c, target in enumerate(targets):
                target[start : start + count] += q[..., c]
            done += count
            if progress is not None:
                progress(done, total)
    labels = acc[0]
    if num_classes == 1:  # threshold in place: the accumulator becomes the {0, 1} label volume
        np.greater(labels, cut, out=labels.view(np.bool_))
        return labels
    for start in range(0, volume.shape[0], batch_size):  # chunked argmax (first class on ties), written in place
        chunk = slice(start, start + batch_size)
        labels[chunk] = np.argmax(np.stack([a[chunk] for a in acc]), axis=0)
    del targets, acc
    return labels
