"""Benchmark IoU as the CEM500K evaluation scripts compute it (docs/method.md §5).

Inputs are integer label maps of equal shape (`pred`, `truth`: [H, W] for 2D, [D, H, W] for 3D); a binary model's
prediction is {0, 1} and is evaluated on class 1. A class's IoU is |pred == c ∧ truth == c| / |pred == c ∨ truth == c|.

- 2D (`inference2d.py`): per image and class (I + 1e-5) / (U + 1e-5), so a class absent from both prediction and
  truth scores 1.0; an image's score is the mean over the evaluation classes, the benchmark score the mean over
  images (equivalently the mean of the [n_images, n_classes] table).
- 3D (`inference3d.py`): per volume and class I / U without epsilon; mean over evaluation classes, then over
  volumes. With `mask_to_truth` (Guay) the prediction is first set to 0 wherever truth == 0 (unlabelled voxels).
  U == 0 (class in neither volume) is undefined: the reference divides 0 / 0 and gets NaN, which then makes the
  whole mean NaN. Here the class IoU is NaN as well, but the means skip NaN entries (`np.nanmean`); a mean with
  nothing defined is NaN.

Default evaluation classes (both scripts): [1] for a one-channel (binary) model, else 1 .. C-1 (background 0 is
never scored). A benchmark's evaluation may name others (`cemjax.benchmarks`: Guay 2-6, UroCell 1-2).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np

EPS_2D = 1e-5


def default_eval_classes(num_classes: int) -> list[int]:
    """Classes scored for a model with `num_classes` output channels: [1] if binary (1 channel), else 1 .. C-1."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return [1] if num_classes == 1 else list(range(1, num_classes))


def _check(pred: np.ndarray, truth: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != ndim:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must be equal {ndim}D shapes")
    return pred, truth


def intersection_union(pred_mask: np.ndarray, truth_mask: np.ndarray) -> tuple[int, int]:
    """(|pred ∧ truth|, |pred ∨ truth|) of two boolean masks of equal shape, as Python ints (voxel counts)."""
    pred_mask, truth_mask = np.asarray(pred_mask, bool), np.asarray(truth_mask, bool)
    inter = int(np.count_nonzero(pred_mask & truth_mask))
    union = int(np.count_nonzero(pred_mask)) + int(np.count_nonzero(truth_mask)) - inter
    return inter, union


def class_ious_2d(pred: np.ndarray, truth: np.ndarray, classes: Sequence[int], eps: float = EPS_2D) -> np.ndarray:
    """Per-class IoU (I + eps) / (U + eps) of one image. pred, truth: int [H, W] → float64 [len(classes)]."""
    pred, truth = _check(pred, truth, 2)
    out = np.empty(len(classes), np.float64)
    for k, c in enumerate(classes):
        inter, union = intersection_union(pred == c, truth == c)
        out[k] = (inter + eps) / (union + eps)
    return out


def iou_2d(pred: np.ndarray, truth: np.ndarray, classes: Sequence[int]) -> float:
    """One image's score: mean of `class_ious_2d` over `classes`. pred, truth: int [H, W]."""
    return float(class_ious_2d(pred, truth, classes).mean())


def mask_prediction(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The reference's `mask_prediction3d`: a copy of `pred` with 0 wherever truth == 0 (unlabelled region)."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    return np.where(truth > 0, pred, np.zeros((), pred.dtype))


def class_ious_3d(
    pred: np.ndarray, truth: np.ndarray, classes: Sequence[int], mask_to_truth: bool = False
) -> np.ndarray:
    """Per-class IoU I / U of one volume (NaN where U == 0). pred, truth: int [D, H, W] → float64 [len(classes)]."""
    pred, truth = _check(pred, truth, 3)
    if mask_to_truth:
        pred = mask_prediction(pred, truth)
    out = np.empty(len(classes), np.float64)
    for k, c in enumerate(classes):
        inter, union = intersection_union(pred == c, truth == c)
        out[k] = inter / union if union else np.nan
    return out


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice → NaN, which is the documented answer
        return float(np.nanmean(values)) if np.size(values) else float("nan")


def iou_3d(pred: np.ndarray, truth: np.ndarray, classes: Sequence[int], mask_to_truth: bool = False) -> float:
    """One volume's score: mean of `class_ious_3d` over the classes with U > 0 (NaN if none). int [D, H, W]."""
    return _nanmean(class_ious_3d(pred, truth, classes, mask_to_truth))


def dataset_iou_2d(pairs: Iterable[tuple[np.ndarray, np.ndarray]], classes: Sequence[int]) -> tuple[float, np.ndarray]:
    """Benchmark score over (pred, truth) image pairs: (mean over images of `iou_2d`, per-class mean [len(classes)])."""
    table = np.array([class_ious_2d(p, t, classes) for p, t in pairs], np.float64).reshape(-1, len(classes))
    if not len(table):
        raise ValueError("no images to evaluate")
    return float(table.mean()), table.mean(axis=0)


def dataset_iou_3d(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], classes: Sequence[int], mask_to_truth: bool = False
) -> tuple[float, np.ndarray]:
    """Benchmark score over (pred, truth) volume pairs: (mean over volumes of `iou_3d`, per-class nan-mean)."""
    table = np.array([class_ious_3d(p, t, classes, mask_to_truth) for p, t in pairs], np.float64)
    table = table.reshape(-1, len(classes))
    if not len(table):
        raise ValueError("no volumes to evaluate")
    per_volume = np.array([_nanmean(row) for row in table])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_class = np.nanmean(table, axis=0)
    return _nanmean(per_volume), per_class
