"""The classes of a folder of your own masks: read from a small sidecar, or inferred from the masks.

`FOLDER/classes.json` names the mask values, in the order of the model's classes (the first is the background,
never scored; with two classes the model has one output, the second class's probability):

    {"classes": ["background", "mito", "er"]}                   mask value = position (0, 1, 2)
    {"classes": {"255": "cell", "0": "membrane"}}               mask value → name, in class order
    {"classes": {"1": "background", "2": "mito"}, "ignore": 0}   0 marks unlabelled pixels (no loss, not scored)

Without the sidecar the classes are the sorted mask values found (0 is "background", others "class_<v>"), with
a warning. Masks are remapped to class indices 0 .. K−1 and `IGNORE` (255) for unlabelled pixels; a mask value
that is neither a class nor the ignore value is refused naming the file, the value and the classes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cemjax.common.errors import InputError

SIDECAR = "classes.json"
IGNORE = 255  # remapped label of unlabelled pixels
MAX_CLASSES = 254


@dataclass(frozen=True)
class ClassTable:
    """names[k] is class k, marked in the masks by values[k]; `ignore_value` marks unlabelled pixels (or None).
    `inferred`: read from the masks rather than from a sidecar."""

    names: tuple[str, ...]
    values: tuple[int, ...]
    ignore_value: int | None = None
    inferred: bool = False
    source: str = ""

    def describe(self) -> str:
        """ "0 (background), 255 (membrane); unlabelled 7" — how error messages name the classes."""
        text = ", ".join(f"{v} ({n})" for v, n in zip(self.values, self.names, strict=True))
        return text + (f"; unlabelled {self.ignore_value}" if self.ignore_value is not None else "")

    def remap(self, mask: np.ndarray, path: str) -> np.ndarray:
        """Mask values → uint8 class indices (IGNORE for unlabelled). InputError naming `path`, the first value
        outside the classes and the classes."""
        values, inverse = np.unique(np.asarray(mask), return_inverse=True)
        lookup = {v: k for k, v in enumerate(self.values)}
        if self.ignore_value is not None:
            lookup[self.ignore_value] = IGNORE
        targets = np.empty(len(values), np.uint8)
        for j, v in enumerate(values.tolist()):
            if v not in lookup:
                raise InputError(
                    f"{path}: label {v} is not one of the classes {self.describe()} ({self.source}); "
                    f"fix the mask or add the label to {SIDECAR}"
                )
            targets[j] = lookup[v]
        return targets[inverse.reshape(np.shape(mask))]


def as_labels(mask: np.ndarray, path: str) -> np.ndarray:
    """A mask array as integer labels (bool → 0/1; integral floats → int64); InputError otherwise."""
    mask = np.asarray(mask)
    if mask.dtype.kind == "b":
        return mask.astype(np.uint8)
    if mask.dtype.kind == "f":
        if not np.all(np.isfinite(mask)) or np.any(mask != np.round(mask)):
            raise InputError(f"{path}: mask values must be integer labels (got {mask.dtype} with fractions)")
        return mask.astype(np.int64)
    if mask.dtype.kind not in "ui":
        raise InputError(f"{path}: mask dtype {mask.dtype} is not an integer label type")
    return mask


def read_sidecar(folder: str) -> ClassTable | None:
    """The class table of `folder/classes.json`, or None when there is none."""
    path = os.path.join(folder, SIDECAR)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None
    classes = data.get("classes") if isinstance(data, dict) else None
    if isinstance(classes, list):
        names, values = tuple(str(n) for n in classes), tuple(range(len(classes)))
    elif isinstance(classes, dict):
        try:
            values = tuple(int(v) for v in classes)
        except ValueError:
            raise InputError(f"{path}: 'classes' keys must be mask values (integers), got {list(classes)}") from None
        names = tuple(str(n) for n in classes.values())
    else:
        raise InputError(f"{path}: needs 'classes': a list of names or an object {{mask value: name}}")
    ignore = data.get("ignore")
    if ignore is not None and (not isinstance(ignore, int) or ignore in values):
        raise InputError(f"{path}: 'ignore' must be an integer mask value that is not a class, got {ignore!r}")
    _check_count(len(names), path)
    return ClassTable(names, values, ignore, inferred=False, source=path)


def _check_count(n: int, where: str) -> None:
    if n < 2:
        raise InputError(f"{where}: {n} class(es); a segmentation needs at least two (background and one more)")
    if n > MAX_CLASSES:
        raise InputError(f"{where}: {n} classes; at most {MAX_CLASSES} are supported")


def infer_classes(masks: Iterable[np.ndarray], folder: str, ignore_value: int | None = None) -> ClassTable:
    """Classes from the sorted values found in `masks` (integer label arrays), less `ignore_value`; warns once on
    stderr that the names are made up."""
    found: set[int] = set()
    for mask in masks:
        found.update(np.unique(mask).tolist())
    found.discard(ignore_value)
    values = tuple(sorted(found))
    names = tuple("background" if v == 0 else f"class_{v}" for v in values)
    _check_count(len(values), f"{folder}/masks")
    table = ClassTable(names, values, ignore_value, inferred=True, source=f"inferred from {folder}/masks")
    sidecar = os.path.join(folder, SIDECAR)
    print(f"warning: {folder} has no {SIDECAR}; classes inferred from the masks: {table.describe()}. "
          f"Write {sidecar} to name them and fix their order", file=sys.stderr, flush=True)  # fmt: skip
    return table
