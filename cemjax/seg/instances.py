"""Perez instance-matched IoU (docs/method.md §5): the Perez test images are only partly labelled, so a predicted
object is scored only if it touches a labelled object.

Per evaluation class c the reference (`inference2d.py`, `instance_match2d`) labels the connected components of
pred == c with `skimage.measure.label` at its default connectivity (full: 8-neighbourhood in 2D, 26 in 3D), keeps
every predicted component that shares at least one pixel with truth == c, and computes (I + 1e-5) / (U + 1e-5)
between the kept pixels and truth == c. Labelling the truth's components (as the reference also does) does not
change which predicted components are kept, so only the prediction is labelled here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage

from cemjax.seg.metrics import EPS_2D, intersection_union


def match_instances(pred_mask: np.ndarray, truth_mask: np.ndarray, connectivity: int | None = None) -> np.ndarray:
    """Predicted components that overlap the truth. bool [H, W] (or nD) → bool of the same shape.

    connectivity: neighbourhood rank as in skimage/scipy (1 = faces only, ndim = full); None → full, the
    reference's default.
    """
    pred_mask, truth_mask = np.asarray(pred_mask, bool), np.asarray(truth_mask, bool)
    if pred_mask.shape != truth_mask.shape:
        raise ValueError(f"pred {pred_mask.shape} and truth {truth_mask.shape} differ in shape")
    rank = pred_mask.ndim if connectivity is None else connectivity
    structure = ndimage.generate_binary_structure(pred_mask.ndim, rank)
    components, _ = ndimage.label(pred_mask, structure=structure)
    touching = np.unique(components[truth_mask])
    touching = touching[touching != 0]
    return np.isin(components, touching)


def instance_class_ious_2d(
    pred: np.ndarray, truth: np.ndarray, classes: Sequence[int], connectivity: int | None = None
) -> np.ndarray:
    """Per-class instance-matched IoU (I + 1e-5) / (U + 1e-5) of one image. int [H, W] → float64 [len(classes)]."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must be equal 2D shapes")
    out = np.empty(len(classes), np.float64)
    for k, c in enumerate(classes):
        truth_c = truth == c
        inter, union = intersection_union(match_instances(pred == c, truth_c, connectivity), truth_c)
        out[k] = (inter + EPS_2D) / (union + EPS_2D)
    return out


def instance_iou_2d(pred: np.ndarray, truth: np.ndarray, classes: Sequence[int]) -> float:
    """One image's instance-matched score: mean of `instance_class_ious_2d` over `classes`. int [H, W]."""
    return float(instance_class_ious_2d(pred, truth, classes).mean())


def dataset_instance_iou_2d(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], classes: Sequence[int]
) -> tuple[float, np.ndarray]:
    """Instance-matched benchmark score over (pred, truth) pairs: (mean over images, per-class mean)."""
    table = np.array([instance_class_ious_2d(p, t, classes) for p, t in pairs], np.float64).reshape(-1, len(classes))
    if not len(table):
        raise ValueError("no images to evaluate")
    return float(table.mean()), table.mean(axis=0)
