"""Move weights between a cemjax NNX module and a flat torch-named dict of numpy arrays, strictly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import jax.numpy as jnp
import numpy as np
from flax import nnx

from cemjax.common.errors import InputError
from cemjax.convert.names import to_flax_layout, to_torch_layout, torch_key, torch_shape_for

StemFold = Literal["error", "sum", "mean"]


class WeightMismatchError(InputError):
    """Names or shapes of a checkpoint do not fit the model; the message says which key and what to do."""


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What a load did: keys loaded, checkpoint keys deliberately ignored, conversions applied."""

    loaded: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def to_torch_state_dict(module: nnx.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of `module` (params and BN statistics) as a torch-named, torch-laid-out numpy dict."""
    out = {}
    for path, var in nnx.to_flat_state(nnx.state(module)):
        if isinstance(var, nnx.Param | nnx.BatchStat):
            out[prefix + torch_key(path)] = to_torch_layout(path, np.asarray(var.get_value()))
    return out


def _fold_stem(key: str, value: np.ndarray, expected: tuple[int, ...], stem: StemFold) -> np.ndarray | None:
    """Fold an RGB stem [out, 3, kh, kw] into [out, 1, kh, kw] if asked; None if not applicable."""
    if stem == "error" or value.ndim != 4 or value.shape[1] != 3 or expected[1] != 1:
        return None
    if value.shape[0] != expected[0] or value.shape[2:] != expected[2:]:
        return None
    folded = value.sum(axis=1, keepdims=True) if stem == "sum" else value.mean(axis=1, keepdims=True)
    return folded


def load_torch_state_dict(
    module: nnx.Module,
    state_dict: Mapping[str, np.ndarray],
    *,
    prefix: str = "",
    stem: StemFold = "error",
    ignore_prefixes: tuple[str, ...] = (),
) -> LoadReport:
    """Load a torch-named dict into `module` in place, strictly.

    Keys are looked up as `prefix + <torch key>`; checkpoint keys outside `prefix`, or under `ignore_prefixes`
    (given relative to `prefix`), are ignored and reported. Every model variable must be present with the
    right shape and every remaining checkpoint key must be used, else `WeightMismatchError` names the keys.
    `stem="sum"|"mean"` folds a 3-channel first conv into a 1-channel model (ImageNet weights → EM).
    """
    relative = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    ignored = sorted(k for k in state_dict if not k.startswith(prefix))
    ignored += sorted(prefix + k for k in relative if k.startswith(ignore_prefixes) and ignore_prefixes)
    relative = {k: v for k, v in relative.items() if not (ignore_prefixes and k.startswith(ignore_prefixes))}

    flat = nnx.to_flat_state(nnx.state(module))
    updates, loaded, notes, problems = [], [], [], []
    for path, var in flat:
        if not isinstance(var, nnx.Param | nnx.BatchStat):
            continue
        key = torch_key(path)
        current = np.asarray(var.get_value())
        expected = torch_shape_for(path, current.shape)
        if key not in relative:
            problems.append(f"missing key {prefix + key!r} (model expects shape {expected})")
            continue
        value = np.asarray(relative.pop(key))
        if tuple(value.shape) != expected:
            folded = _fold_stem(key, value, expected, stem)
            if folded is None:
                hint = (
                    "; pass stem='sum' (CLI: --stem=sum) to fold RGB stem weights into one channel"
                    if value.ndim == 4 and value.shape[1] == 3 and expected[1] == 1
                    else "; build the model with the checkpoint's architecture (depth, in_channels, classes)"
                )
                problems.append(
                    f"shape mismatch at {prefix + key!r}: checkpoint {tuple(value.shape)}, model {expected}{hint}"
                )
                continue
            notes.append(f"{prefix + key}: folded 3 input channels into 1 by {stem}")
            value = folded
        updates.append((path, var.replace(jnp.asarray(to_flax_layout(path, value), dtype=current.dtype))))
        loaded.append(prefix + key)
    problems += [
        f"unexpected key {prefix + k!r} {tuple(np.shape(v))} not used by the model" for k, v in relative.items()
    ]
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise WeightMismatchError(f"{len(problems)} weight problem(s) loading into {type(module).__name__}:\n  {shown}")
    nnx.update(module, nnx.from_flat_state(updates))
    return LoadReport(tuple(loaded), tuple(ignored), tuple(notes))
