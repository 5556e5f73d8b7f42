"""Validation during fine-tuning on your own data: IoU per class on held-out pairs, early stopping, best model.

Every `eval.every` steps (and at the last step) the model in eval mode predicts each validation pair as
`cemjax.segment` would apply it (`predict_volume`: slices padded to multiples of 32, stack or orthoplane; a 2D
image is a one-slice stack), and IoU = I / U per class is summed over all pairs and taken over labelled pixels
only (unlabelled pixels are not scored). The background class 0 is not scored (`default_eval_classes`).

The score (mean IoU over the scored classes) goes to TensorBoard (`val/iou`, `val/iou_<class>`), metrics.jsonl
and `validation.jsonl`; the best one so far is kept in `best_model/` (a model directory). With
`eval.patience` > 0 training stops after that many validations without improvement. A resumed run reads
`validation.jsonl` back, so early stopping and the best model survive a kill.
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np

from cemjax.common.files import write_text
from cemjax.convert.flax_checkpoint import save_model
from cemjax.data.folder_classes import IGNORE
from cemjax.seg.forward import eval_split, make_forward
from cemjax.seg.inference import predict_volume
from cemjax.seg.metrics import default_eval_classes
from cemjax.seg.step import model_from_state

HISTORY = "validation.jsonl"
BEST = "best_model"


def labelled_counts(pred: np.ndarray, truth: np.ndarray, classes, ignore: int | None = IGNORE) -> np.ndarray:
    """int64 [len(classes), 2]: (intersection, union) voxel counts per class over pixels where truth != ignore."""
    labelled = truth != ignore if ignore is not None else np.ones(truth.shape, bool)
    out = np.zeros((len(classes), 2), np.int64)
    for k, c in enumerate(classes):
        p, t = (pred == c) & labelled, (truth == c) & labelled
        out[k] = np.count_nonzero(p & t), np.count_nonzero(p | t)
    return out


class Validator:
    """Call `validator(step, state)` after every step; returns True when early stopping says stop."""

    def __init__(self, pairs, graphdef, spec, norms, classes, *, mode: str, every: int, patience: int, total: int,
                 workdir: str, writer, is_lead: bool, batch_size: int = 4, overlays: int = 1):  # fmt: skip
        self.pairs, self.graphdef, self.spec, self.norms = pairs, graphdef, spec, norms
        self.mode, self.every, self.patience, self.total = mode, max(1, every), patience, total
        self.workdir, self.writer, self.is_lead, self.batch_size = workdir, writer, is_lead, batch_size
        self.overlays, self.class_names = overlays, tuple(classes)
        self.class_ids = default_eval_classes(spec.classes)
        self.names = [classes[c] for c in self.class_ids]
        self._forward = None
        self.history = _read_history(os.path.join(workdir, HISTORY))

    @property
    def best(self) -> dict | None:
        scored = [h for h in self.history if np.isfinite(h["iou"])]
        return max(scored, key=lambda h: (h["iou"], -h["step"])) if scored else None

    def should_stop(self) -> bool:
        """Early stopping: `patience` validations since the best one (never with patience 0)."""
        best = self.best
        if self.patience <= 0 or best is None:
            return False
        return sum(h["step"] > best["step"] for h in self.history) >= self.patience

    def __call__(self, step: int, state) -> bool:
        if step % self.every and step != self.total:
            return False
        if any(h["step"] == step for h in self.history):  # validated before a resume
            return self.should_stop()
        model = model_from_state(self.graphdef, jax.device_get(state))
        record = {"step": step, **self.evaluate(model)}
        previous = self.best
        self.history.append(record)
        improved = previous is None or record["iou"] > previous["iou"]
        if self.is_lead:
            if improved and np.isfinite(record["iou"]):
                _replace_model_dir(os.path.join(self.workdir, BEST), model, self.spec)
            write_text(os.path.join(self.workdir, HISTORY), "".join(json.dumps(h) + "\n" for h in self.history))
            self.writer.write_scalars(step, {"val/iou": record["iou"], **{
                f"val/iou_{n}": v for n, v in record["per_class"].items()}})  # fmt: skip
            per_class = "  ".join(f"{n} {v:.3f}" for n, v in record["per_class"].items())
            print(f"validation step {step}: IoU {record['iou']:.4f} ({per_class})" + ("  best" if improved else ""),
                  flush=True)  # fmt: skip
        return self.should_stop()

    def predict(self, model, image: np.ndarray, mode: str = "stack") -> np.ndarray:
        """Labels uint8 of a uint8 image [H, W] or volume [D, H, W] (`predict_volume` in `mode`)."""
        graph, variables = eval_split(model)
        if self._forward is None:
            self._forward = make_forward(graph, self.norms)
        volume = image if image.ndim == 3 else image[None]
        pred = predict_volume(lambda x: self._forward(variables, x), volume, self.spec.classes,
                              mode=mode if image.ndim == 3 else "stack", batch_size=self.batch_size)  # fmt: skip
        return pred if image.ndim == 3 else pred[0]

    def evaluate(self, model) -> dict:
        """{"iou": mean over scored classes, "per_class": {name: IoU}} of `model` on the validation pairs."""
        counts = np.zeros((len(self.class_ids), 2), np.int64)
        for pair in self.pairs:
            counts += labelled_counts(self.predict(model, pair.image, self.mode), pair.mask, self.class_ids)
        with np.errstate(invalid="ignore", divide="ignore"):
            ious = np.where(counts[:, 1] > 0, counts[:, 0] / np.maximum(counts[:, 1], 1), np.nan)
        mean = float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")
        return {"iou": mean, "per_class": {n: float(v) for n, v in zip(self.names, ious, strict=True)}}


def _read_history(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _replace_model_dir(path: str, model, spec) -> None:
    """Write the model to a sibling and swap it in, so a kill never leaves a half-written best model."""
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, model, spec)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
