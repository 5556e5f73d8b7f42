"""A fine-tuned model on a benchmark's test split, scored as the reference's inference scripts score it.

`test_sets(config)` lists what to evaluate: the benchmark's own test split in its mode (2D, instance-matched
2D, 3D stack, 3D orthoplane), or for all_mito the five source benchmarks' test splits, each binarised to
mitochondria and scored in its own mode. The all_mito score is the mean of the five; for Guay, the
prediction is masked to the labelled cells (Guay labels > 0) before binarising (the reference masks to its
mito-only test masks, which would hide false positives).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cemjax.benchmarks import get
from cemjax.common.progress import Progress
from cemjax.data.built import data_source
from cemjax.seg.inference import predict_2d, predict_volume
from cemjax.seg.instances import instance_class_ious_2d
from cemjax.seg.metrics import class_ious_2d, class_ious_3d
from cemjax.seg.overlays import write_overlay


@dataclass(frozen=True)
class TestSet:
    """One evaluation: the TFDS config, its mode, evaluation classes of the model's output, and for
    all_mito the label of mitochondria in the source's masks (`binarise`), None otherwise."""

    name: str
    mode: str
    classes: tuple[int, ...]
    mask_to_truth: bool = False
    instance_match: bool = False
    binarise: int | None = None


def test_sets(config) -> list[TestSet]:
    """The benchmark's own test split in the config's evaluation, or for a "mixed" benchmark (All Mitochondria)
    each source benchmark's test split in that benchmark's own evaluation, binarised to mitochondria."""
    if config.eval.mode != "mixed":
        return [
            TestSet(config.benchmark, config.eval.mode, tuple(config.eval.classes), config.eval.mask_to_truth,
                    config.eval.instance_match)
        ]  # fmt: skip
    sets = []
    for name, label in get(config.benchmark).evaluation.sources:
        own = get(name).evaluation
        sets.append(TestSet(name, own.mode, (1,), own.mask_to_truth, own.instance_match, label))
    return sets


def examples(name: str, split: str, data_dir: str | None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(example name, image uint8 [H, W] or [D, H, W], labels of the same shape) of a built split."""
    source = data_source(f"cem_benchmarks/{name}", split, data_dir)
    three_d = get(name).layout.kind == "3d"
    for i in range(len(source)):
        ex = source[i]
        name_i = ex["name"].decode() if isinstance(ex["name"], bytes) else str(ex["name"])
        if three_d:
            yield name_i, ex["image"], ex["labels"]
        else:
            yield name_i, ex["image"][..., 0], ex["mask"][..., 0]


def _score(test: TestSet, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-class IoU of one image / volume (binarising and masking for all_mito)."""
    if test.binarise is not None:
        if test.mask_to_truth:
            pred = np.where(truth > 0, pred, 0)
        truth = (truth == test.binarise).astype(np.uint8)
        mask_to_truth = False
    else:
        mask_to_truth = test.mask_to_truth
    if test.mode == "2d":
        scorer = instance_class_ious_2d if test.instance_match else class_ious_2d
        return scorer(pred, truth, test.classes)
    return class_ious_3d(pred, truth, test.classes, mask_to_truth)


def evaluate(
    predict_fn, config, data_dir: str | None, out_dir: str, *, class_names: tuple[str, ...] | None = None
) -> dict:
    """Score `predict_fn` (see `cemjax.seg.inference`) on every test set of `config`; writes overlay PNGs to
    `out_dir/overlays/`. Returns {"iou": benchmark score, "sets": {name: {"iou", "per_class", "n", "mode"}},
    "overlays": [paths]}."""
    num_classes = config.model.num_classes
    results, overlays = {}, []
    for test in test_sets(config):
        rows = []
        classes = get(test.name).classes
        names = class_names or (("background",) + classes[1:] if num_classes == 1 else classes)
        for k, (ex_name, image, truth) in enumerate(examples(test.name, config.eval.split, data_dir)):
            if test.mode == "2d":
                pred = predict_2d(predict_fn, image, num_classes)
            else:
                progress = Progress(0, label=f"evaluate {test.name} · {ex_name}", unit="slices")
                pred = predict_volume(predict_fn, image, num_classes, mode=test.mode, batch_size=config.eval.batch_size,
                                      progress=progress.report)  # fmt: skip
            rows.append(_score(test, pred, truth))
            if k < config.eval.overlays:
                shown = truth if test.binarise is None else (truth == test.binarise).astype(np.uint8)
                z = image.shape[0] // 2 if image.ndim == 3 else None
                panels = [a[z] if z is not None else a for a in (image, shown, pred)]
                path = os.path.join(out_dir, "overlays", f"{test.name}_{k}.png")
                title = f"{test.name} · {ex_name}" + (f" · slice {z}" if z is not None else "")
                overlays.append(write_overlay(path, *panels, names, title=title))
        if not rows:
            raise ValueError(f"cem_benchmarks/{test.name} split {config.eval.split!r} is empty")
        table = np.asarray(rows, np.float64)
        with np.errstate(all="ignore"):
            per_item = np.nanmean(table, axis=1) if test.mode != "2d" else table.mean(axis=1)
            per_class = np.nanmean(table, axis=0)
        results[test.name] = {
            "iou": float(np.nanmean(per_item)),
            "per_class": [float(v) for v in per_class],
            "classes": list(test.classes),
            "n": len(rows),
            "mode": test.mode + (" instance-matched" if test.instance_match else ""),
        }
    score = float(np.mean([r["iou"] for r in results.values()]))
    return {"iou": score, "sets": results, "overlays": overlays}
