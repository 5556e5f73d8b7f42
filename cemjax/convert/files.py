"""Read and write PyTorch weight files safely: `.pth` / `.pth.tar` (pickle) and `.safetensors`.

Pickles are opened only with `torch.load(weights_only=True)`, which rebuilds tensors and plain containers and
refuses anything that would import or call code; a refusal becomes `UnsafeCheckpointError`. Writes are atomic.
"""

from __future__ import annotations

import importlib.util
import os
import pickletools
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from cemjax.common.errors import InputError, RefusedError
from cemjax.common.files import atomic_write

TORCH_EXTRA = "pip install 'cemjax[torch]'"


class UnsafeCheckpointError(RefusedError):
    """A pickle asked to run code or build non-tensor objects; it was not loaded."""


class CheckpointFormatError(InputError):
    """The file is not a weight file this project can read."""


def torch_available() -> bool:
    """Whether PyTorch (the optional `torch` extra) is installed; `.safetensors` files need no torch."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # an import hook that hides it, or a half-imported module
        return False


def _torch():
    """torch, imported here and not at the top: it is an optional extra, needed only for `.pth` files."""
    if not torch_available():
        raise ImportError(f"reading or writing .pth files needs PyTorch: {TORCH_EXTRA} (.safetensors need no torch)")
    import torch

    return torch


def _to_numpy(obj: Any) -> Any:
    """Tensors → numpy, recursively through dicts/lists/tuples; other leaves unchanged."""
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    if isinstance(obj, Mapping):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def read_weights(path: str | os.PathLike) -> dict[str, Any]:
    """Load a weight file into plain Python + numpy, never executing code from it.

    `.safetensors` → {key: ndarray}. `.pth`/`.pt`/`.pth.tar`/`.ckpt` → the pickled object with tensors as
    numpy (a state_dict, or a dict holding one under `state_dict`, plus `epoch`, `norms`, …).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weight file")
    if path.stat().st_size == 0:
        raise CheckpointFormatError(f"{path}: the file is empty (0 bytes); re-download or re-export it")
    if path.suffix == ".safetensors":
        try:
            return dict(load_file(str(path)))
        except Exception as err:
            raise CheckpointFormatError(f"{path}: not a readable safetensors file ({err})") from err
    torch = _torch()
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # sorted below: a well-formed pickle torch refused, or not a checkpoint at all
        malformed = _malformed_pickle(path)
        if malformed:
            raise CheckpointFormatError(
                f"{path} is not a PyTorch checkpoint ({malformed}); expected a .pth/.pth.tar saved by torch.save"
            ) from None
        raise UnsafeCheckpointError(
            f"{path}: refused — the pickle wants to run code or build objects other than tensors and plain "
            f"containers ({_refusal_detail(err)}). Nothing from it was executed. If you trust its author, convert "
            f"it to .safetensors in a sandbox first."
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    return _to_numpy(obj)


def _malformed_pickle(path: Path) -> str:
    """Why `path` is no pickle at all ("" when it is a well-formed one). Opcodes are only parsed, never run."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
                if not pkl:
                    return "a zip archive without data.pkl"
                data = z.read(pkl[0])
        else:
            data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
    except Exception as err:  # noqa: BLE001  (any parse failure means: not a pickle)
        return f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"
    return ""


def _refusal_detail(err: Exception) -> str:
    """What torch's weights-only loader refused, without its advice to load the file unsafely."""
    text = " ".join(str(err).split())
    found = re.search(r"(unsupported GLOBAL \S+|Unsupported global: \S+|Unsupported operand \d+)", text)
    return found.group(1) if found else type(err).__name__


def write_weights(path: str | os.PathLike, state: Mapping[str, np.ndarray], **metadata: Any) -> Path:
    """Write a flat {key: array} dict as `.safetensors` (metadata must be strings) or `.pth` (torch.save).

    For `.pth` with metadata the file holds `{"state_dict": ..., **metadata}`, else the bare state_dict.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        arrays = {k: np.require(v, requirements="C") for k, v in state.items()}  # keeps 0-d arrays 0-d
        meta = {k: str(v) for k, v in metadata.items()} or None
        return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=meta))
    torch = _torch()
    tensors = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()}
    payload = {"state_dict": tensors, **metadata} if metadata else tensors
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def write_object(path: str | os.PathLike, obj: Any) -> Path:
    """torch.save a nested object whose numpy leaves become tensors (for the reference MoCo `.pth.tar`)."""
    torch = _torch()

    def tensors(o):
        if isinstance(o, np.ndarray):
            return torch.from_numpy(np.array(o, copy=True))
        if isinstance(o, Mapping):
            return {k: tensors(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return type(o)(tensors(v) for v in o)
        return o

    return atomic_write(path, lambda tmp: torch.save(tensors(obj), tmp))
