"""Quality filtering (docs/method.md §1.5): an always-on cheap pre-filter for trivially blank patches, and the
scoring hook for the trained ResNet classifier (`cemjax.curate.classifier`).

The pre-filter only removes what no classifier is needed for: near-constant patches (std < `min_std` grey
levels) and patches mostly at the extremes (more than `max_extreme` of the pixels ≤ 2 or ≥ 253, i.e.
saturation, black frames or zero padding from out-of-sample regions).
"""

from __future__ import annotations

import functools

import numpy as np

MIN_STD = 3.0
MAX_EXTREME = 0.5


def _features(flat: np.ndarray) -> np.ndarray:
    std = flat.std(axis=1, dtype=np.float64)
    extreme = ((flat <= 2) | (flat >= 253)).mean(axis=1)
    return np.stack([std, extreme], axis=1).astype(np.float32)


def patch_features(patches: np.ndarray, sizes: np.ndarray | None = None) -> np.ndarray:
    """float32 [N, 2] = (std in grey levels, fraction of pixels ≤ 2 or ≥ 253) of uint8 patches [N, H, W];
    with `sizes` int [N, 2], patch i is the top-left sizes[i] of its canvas (the rest is not looked at)."""
    if not len(patches):
        return np.zeros((0, 2), np.float32)
    out = _features(patches.reshape(len(patches), -1).astype(np.float32))
    if sizes is not None:
        for i in np.flatnonzero((sizes != patches.shape[1:3]).any(axis=1)):
            h, w = sizes[i]
            out[i] = _features(patches[i, :h, :w].reshape(1, -1).astype(np.float32))[0]
    return out


def blank_reason(features: np.ndarray, min_std: float = MIN_STD, max_extreme: float = MAX_EXTREME) -> np.ndarray:
    """Per patch '' (passes) or the pre-filter's reason: 'blank' (near-constant) or 'saturated'."""
    out = np.full(len(features), "", dtype=object)
    out[features[:, 1] > max_extreme] = "saturated"
    out[features[:, 0] < min_std] = "blank"
    return out


@functools.cache
def load_scorer(model_dir: str):
    """Cached per process: the saved classifier as a `classifier.Scorer` (uint8 [N, H, W] → float32 [N]
    P(informative); `.threshold` from its quality.json)."""
    from cemjax.curate.classifier import load_classifier  # here: Beam workers that only pre-filter load no JAX

    return load_classifier(model_dir)
