"""What the fine-tuning trainer trains on: a built benchmark (TFDS) or a folder of your own labelled data.

Both give the trainer the same things: random-access training planes for `CropBatches`, the class names, the
number of model outputs, the unlabelled value (if any), validation pairs (folders) and a provenance record.
A folder is read directly (no build step): user data changes often, and a TFDS build would add a command and a
second copy of the data for nothing the random-crop loader needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cemjax.benchmarks import BENCHMARKS
from cemjax.common.errors import ConfigError, InputError
from cemjax.data.finetune import Planes
from cemjax.data.folder import FolderPlanes, Pair, load_folder, split_pairs
from cemjax.data.folder_classes import IGNORE
from cemjax.seg.metrics import default_eval_classes


@dataclass
class TrainingData:
    """train: planes (``planes[i]`` → (image, mask) uint8 [h, w]); classes: names of the label values 0 .. K−1;
    num_outputs: model channels (1 for two classes: BCE; else K); ignore_label: mask value of unlabelled
    pixels in `train` (None: all labelled); validation: held-out pairs; eval_mode: how the model is applied
    ("2d", "stack", "orthoplane"); dataset: provenance; spacing: the training data's voxel size (nm) if known."""

    train: object
    classes: tuple[str, ...]
    num_outputs: int
    eval_mode: str
    dataset: dict
    ignore_label: int | None = None
    validation: list[Pair] = field(default_factory=list)
    spacing: tuple[float, float, float] | None = None


def is_folder_run(config) -> bool:
    return bool(config.data.folder)


def open_training_data(config):
    """(TrainingData, config with the data's facts filled in: classes, eval mode) for `config`."""
    if is_folder_run(config):
        return _folder(config)
    spec = BENCHMARKS[config.benchmark]
    planes = Planes(config.benchmark, "train", config.data.data_dir or None)
    n = config.model.num_classes
    classes = ("background",) + spec.classes[1:] if n == 1 else spec.classes
    dataset = {"benchmark": config.benchmark, "data_dir": config.data.data_dir or "~/tensorflow_datasets"}
    return TrainingData(planes, tuple(classes), n, config.eval.mode, dataset), config


def _folder(config):
    folder = os.path.abspath(os.path.expanduser(config.data.folder))
    if not os.path.isdir(folder):
        raise InputError(f"data.folder={config.data.folder!r} is not a folder (it needs images/ and masks/)")
    ignore = config.data.ignore_label if config.data.ignore_label >= 0 else None
    axes = tuple(a.strip() for a in config.data.slice_axes.split(",") if a.strip())
    pairs, table = load_folder(folder, ignore)
    train, held = split_pairs(pairs, config.data.validation, config.seed)
    planes = FolderPlanes(train, axes, (folder, config.data.validation, axes, ignore, config.seed))
    num_outputs = 1 if len(table.names) == 2 else len(table.names)
    if config.model.num_classes not in (0, num_outputs):
        raise ConfigError(f"model.num_classes={config.model.num_classes} but {folder} has {len(table.names)} "
                          f"classes ({table.describe()}): {num_outputs} output(s); leave it 0")  # fmt: skip
    three_d = any(p.image.ndim == 3 for p in pairs)
    mode = config.eval.mode if config.eval.mode != "auto" else ("stack" if three_d else "2d")
    if mode not in ("2d", "stack", "orthoplane") or (mode != "2d" and not three_d):
        raise ConfigError(f"eval.mode={mode!r}: use auto, 2d (images), stack or orthoplane (volumes)")
    spacings = {p.spacing for p in pairs if p.spacing is not None}
    config = config.copy_and_resolve_references()
    config.model.num_classes = num_outputs
    config.eval.mode = mode
    config.eval.classes = tuple(default_eval_classes(num_outputs))
    dataset = {
        "folder": folder, "train": [p.name for p in train], "validation": [p.name for p in held],
        "classes_from": table.source, "class_values": list(table.values), "ignore_value": table.ignore_value,
        "slice_axes": list(axes),
    }  # fmt: skip
    data = TrainingData(
        planes, table.names, num_outputs, mode, dataset, IGNORE if table.ignore_value is not None else None, held,
        spacings.pop() if len(spacings) == 1 else None,
    )  # fmt: skip
    return data, config
