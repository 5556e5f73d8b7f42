"""Patches of any size on one fixed-size canvas, with their true sizes: what a batch of true-size patches
(CEM500K's edge patches are smaller than 224 × 224) looks like to a jitted step. numpy only, so the steps and
their benchmarks import it without TFDS or grain."""

from __future__ import annotations

import numpy as np


def place_on_canvas(image: np.ndarray, canvas: np.ndarray) -> tuple[int, int]:
    """Copy uint8 [h, w, C] to the top-left of `canvas` [H, W, C] (zeros elsewhere); a side longer than the
    canvas is cropped to its centre. Returns the (h, w) that was placed."""
    h, w = min(image.shape[0], canvas.shape[0]), min(image.shape[1], canvas.shape[1])
    y0, x0 = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    canvas[...] = 0
    canvas[:h, :w] = image[y0 : y0 + h, x0 : x0 + w]
    return h, w


def on_canvas(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [h_i, w_i, C] images of any sizes → (uint8 [N, max h, max w, C] canvases, int32 [N, 2] true sizes)."""
    canvas = np.zeros((len(images), max(i.shape[0] for i in images), max(i.shape[1] for i in images),
                       images[0].shape[-1]), np.uint8)  # fmt: skip
    valid = np.array([place_on_canvas(image, c) for image, c in zip(images, canvas, strict=True)], np.int32)
    return canvas, valid
