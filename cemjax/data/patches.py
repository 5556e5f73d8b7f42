"""Find and read CEM500K-style patch folders (the EMPIAR-10592 release or `experiments/curate.py` output).

Accepted layouts under a root folder:

- the release: one sub-folder per source dataset holding 224×224 uint8 TIFFs (or a flat folder whose file
  names carry the source before ``-LOC-``);
- curation output: ``<root>/patches/<source>/*.tiff`` (+ ``manifest.csv``); the ``patches`` folder is used.

Patch names ``{source}-LOC-{axis}_{slice}_{y0}-{y1}_{x0}-{x1}`` give provenance; other names keep the source
(prefix before ``-LOC-``, else the parent folder) and −1 / "" for the rest.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import tifffile

from cemjax.common.errors import InputError

PATCH_SIZE = 224
SUFFIXES = (".tif", ".tiff")
_NAME = re.compile(
    r"^(?P<source>.+)-LOC-(?P<axis>[^_]+)_(?P<slice>\d+)_(?P<y0>\d+)-(?P<y1>\d+)_(?P<x0>\d+)-(?P<x1>\d+)$"
)


class PatchError(InputError):
    """A patch that cannot be used as it is (wrong size, dtype, channels) — the message names the file."""


def patch_root(root: str | os.PathLike) -> Path:
    """The folder that holds the patches: ``root/patches`` for curation output, else ``root``."""
    root = Path(root)
    return root / "patches" if (root / "patches").is_dir() and (root / "manifest.csv").exists() else root


def list_patches(root: str | os.PathLike) -> list[Path]:
    """Every TIFF under the patch root, sorted by relative path (deterministic). Raises if there is none."""
    base = patch_root(root)
    if not base.is_dir():
        raise FileNotFoundError(f"patch folder {base} does not exist")
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no .tif/.tiff patches under {base}")
    return files


def provenance(path: Path, root: Path) -> dict:
    """{name, source, axis, slice, y0, y1, x0, x1} from the file name (−1 / "" where it does not say)."""
    name = path.stem
    m = _NAME.match(name)
    if m:
        g = m.groupdict()
        return {"name": name, "source": g["source"], "axis": g["axis"]} | {
            k: int(g[k]) for k in ("slice", "y0", "y1", "x0", "x1")
        }
    rel = path.relative_to(root)
    source = name.split("-LOC-")[0] if "-LOC-" in name else (rel.parts[0] if len(rel.parts) > 1 else "")
    return {"name": name, "source": source, "axis": ""} | dict.fromkeys(("slice", "y0", "y1", "x0", "x1"), -1)


def read_patch(path: Path, size: int = PATCH_SIZE) -> np.ndarray:
    """uint8 [size, size, 1]. Unreadable files raise OSError/ValueError from the reader (callers skip them);
    a readable patch of the wrong shape or dtype raises :class:`PatchError`."""
    image = tifffile.imread(path)
    if image.size == 0:
        raise OSError(f"{path}: no image data")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.shape != (size, size) or image.dtype != np.uint8:
        raise PatchError(
            f"{path}: patch is {image.dtype} {image.shape}, expected uint8 ({size}, {size}); every patch of a "
            "CEM500K folder must be a 224×224 8-bit grayscale image"
        )
    return image[..., None]
