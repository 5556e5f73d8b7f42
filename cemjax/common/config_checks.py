"""Type and range of every numeric config field, checked before any work: one line naming each bad field.

A rule is looked up by the field's dotted path first (`moco.temperature`), then by its last name (`batch_size`), so
one rule covers a field wherever a method's config puts it. Fields without a rule are strings and tuples that the
trainers check against their choices (encoder names, modes, paths). `tests/test_config_checks.py` asserts that every
numeric field of every shipped config has a rule, so a new field cannot slip past unchecked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cemjax.common.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """`kind` is int or float; the value must satisfy `ok`; `wants` says what a good value is, for the message."""

    kind: type
    ok: Callable[[float], bool]
    wants: str


POSITIVE_INT = Rule(int, lambda v: v >= 1, "an integer ≥ 1")
COUNT = Rule(int, lambda v: v >= 0, "an integer ≥ 0 (0 = off / derived)")
POSITIVE = Rule(float, lambda v: v > 0, "a number > 0")
NON_NEGATIVE = Rule(float, lambda v: v >= 0, "a number ≥ 0")
FRACTION = Rule(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
OPEN_FRACTION = Rule(float, lambda v: 0 < v < 1, "a number in (0, 1)")
DEVICES = Rule(int, lambda v: v == -1 or v >= 1, "-1 (all devices) or an integer ≥ 1")
LABEL = Rule(int, lambda v: v >= -1, "-1 (none) or a label value ≥ 0")
SWITCH = Rule(int, lambda v: v in (-1, 0, 1), "-1 (the benchmark's default), 0 (off) or 1 (on)")

BY_NAME: dict[str, Rule] = {
    "batch_size": POSITIVE_INT,
    "log_every": POSITIVE_INT,
    "checkpoint_every": POSITIVE_INT,
    "keep_checkpoints": POSITIVE_INT,
    "image_size": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "iterations": POSITIVE_INT,
    "crop": POSITIVE_INT,
    "embed_dim": POSITIVE_INT,
    "in_channels": POSITIVE_INT,
    "canvas": POSITIVE_INT,
    "max_canvas": POSITIVE_INT,
    "synthetic_patches": POSITIVE_INT,
    "num_processes": POSITIVE_INT,
    "max_steps": COUNT,
    "steps_per_epoch": COUNT,
    "seed": COUNT,
    "worker_count": COUNT,
    "process_id": COUNT,
    "loader_crop": COUNT,
    "every": COUNT,
    "patience": COUNT,
    "overlays": COUNT,
    "num_devices": DEVICES,
    "ignore_label": LABEL,
    "nonempty_crops": SWITCH,
    "noise_blur": SWITCH,
    "temperature": POSITIVE,
    "base_lr": POSITIVE,
    "max_lr": POSITIVE,
    "div_factor": POSITIVE,
    "final_div_factor": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "momentum": FRACTION,
    "pct_start": OPEN_FRACTION,
}
BY_PATH: dict[str, Rule] = {
    "moco.queue_size": POSITIVE_INT,
    "moco.bn_groups": POSITIVE_INT,
    "eval.batch_size": POSITIVE_INT,
    "model.num_classes": Rule(int, lambda v: v >= 0, "an integer ≥ 1, or 0 for a folder's own classes"),
    "data.balance_gamma": NON_NEGATIVE,
    "optim.final_lr": NON_NEGATIVE,
    "optim.start_lr": NON_NEGATIVE,
    "optim.larc_trust": NON_NEGATIVE,
    "optim.warmup_epochs": COUNT,
    "probe.k": POSITIVE_INT,
    "probe.patches": POSITIVE_INT,
    "swav.epsilon": POSITIVE,
    "swav.feat_dim": POSITIVE_INT,
    "swav.hidden_mlp": POSITIVE_INT,
    "swav.num_prototypes": POSITIVE_INT,
    "swav.sinkhorn_iterations": POSITIVE_INT,
    "swav.freeze_prototypes_steps": COUNT,
    "swav.queue_length": COUNT,
    "swav.queue_start_epoch": COUNT,
}


def rule_for(path: str) -> Rule | None:
    return BY_PATH.get(path) or BY_NAME.get(path.rsplit(".", 1)[-1])


def numeric_leaves(config, prefix: str = ""):
    """(dotted path, value) of every int/float leaf (bools excluded), and of every number inside tuples."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if hasattr(value, "items"):
            yield from numeric_leaves(value, path + ".")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int | float):
            yield path, value


def _good_norms(norms: tuple) -> bool:
    """(mean, std) with numbers or per-channel tuples of numbers, all finite, every std > 0."""
    if len(norms) != 2:
        return False
    mean, std = (tuple(v) if isinstance(v, tuple | list) else (v,) for v in norms)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in mean + std)
    return numbers and len(mean) == len(std) and all(v > 0 for v in std)


def problems(config) -> list[str]:
    """`field=value: wants …` for each numeric field outside its rule."""
    found = []
    for path, value in numeric_leaves(config):
        rule = rule_for(path)
        if rule is None:
            continue
        if rule.kind is int and not isinstance(value, int):
            found.append(f"{path}={value!r}: wants {rule.wants}")
        elif isinstance(value, float) and not math.isfinite(value):
            found.append(f"{path}={value!r}: wants {rule.wants}")
        elif not rule.ok(value):
            found.append(f"{path}={value!r}: wants {rule.wants}")
    norms = tuple(config.get("data", {}).get("norms", ()) or ())
    if norms and not _good_norms(norms):
        found.append(f"data.norms={norms!r}: wants (mean, std), each a number or one per channel, with std > 0, "
                     "or () for the data's own")  # fmt: skip
    return found


def check_config(config) -> None:
    """Raise ConfigError naming every bad field, before any work is done."""
    found = problems(config)
    if found:
        raise ConfigError("invalid config: " + "; ".join(found) + " (set them with --config.FIELD=VALUE)")
