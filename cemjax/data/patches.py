"""Find and read CEM500K-style patch folders (the EMPIAR-10592 release or `cemjax-curate` output).

Accepted layouts under a root folder:

- the release: one sub-folder per source dataset holding uint8 TIFFs (or a flat folder whose file names carry
  the source before ``-LOC-``); patches are 224×224 except at the edges of their images, where they keep their
  true size (224×138, 224×200, …);
- curation output: ``<root>/patches/<source>/*.tiff`` (+ ``manifest.csv``); the ``patches`` folder is used.

Names give provenance (docs/method.md §1.3), in any of the conventions in use:

- cemjax and the reference's HEAD: ``{source}-LOC-{axis}_{slice}_{y0}-{y1}_{x0}-{x1}`` with axis xy/xz/yz/2d
  (cemjax) or 0/1/2 (HEAD, slice zero-padded);
- HEAD's 2D script: ``{image}-LOC-2d-{y0}-{y1}_{x0}-{x1}``;
- the reference's v0.1: ``{source}-LOC-{axis}_{slice}_{y0}_{x0}`` and ``{source}-LOC-2d_{y0}_{x0}`` (the far
  corner follows from the patch's size).

Other names keep the source (prefix before ``-LOC-``, else the parent folder) and −1 / "" for the rest.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import tifffile

from cemjax.common.errors import InputError

SUFFIXES = (".tif", ".tiff")
AXIS_NAMES = {"0": "xy", "1": "xz", "2": "yz"}  # the reference's axis digits
_BOX = r"(?P<y0>\d+)-(?P<y1>\d+)_(?P<x0>\d+)-(?P<x1>\d+)"
_NAMES = (
    re.compile(rf"^(?P<source>.+)-LOC-(?P<axis>xy|xz|yz|2d|[012])_(?P<slice>\d+)_{_BOX}$"),
    re.compile(rf"^(?P<source>.+)-LOC-(?P<axis>2d)-{_BOX}$"),
    re.compile(r"^(?P<source>.+)-LOC-(?P<axis>[012])_(?P<slice>\d+)_(?P<y0>\d+)_(?P<x0>\d+)$"),
    re.compile(r"^(?P<source>.+)-LOC-(?P<axis>2d)_(?P<y0>\d+)_(?P<x0>\d+)$"),
)


class PatchError(InputError):
    """A patch that cannot be used as it is (dtype, channels, empty) — the message names the file."""


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


def provenance(path: Path, root: Path, shape: tuple[int, ...] | None = None) -> dict:
    """{name, source, axis, slice, y0, y1, x0, x1} from the file name (−1 / "" where it does not say).
    `shape` (h, w, …) completes the box of names that give only its top-left corner."""
    name = path.stem
    for pattern in _NAMES:
        m = pattern.match(name)
        if m:
            g = m.groupdict()
            out = {"name": name, "source": g["source"], "axis": AXIS_NAMES.get(g["axis"], g["axis"])}
            out["slice"] = int(g.get("slice") or 0) if g["axis"] != "2d" or g.get("slice") else 0
            y0, x0 = int(g["y0"]), int(g["x0"])
            h, w = (shape[0], shape[1]) if shape is not None else (-1, -1)
            y1 = int(g["y1"]) if g.get("y1") else (y0 + h if h >= 0 else -1)
            x1 = int(g["x1"]) if g.get("x1") else (x0 + w if w >= 0 else -1)
            return out | {"y0": y0, "y1": y1, "x0": x0, "x1": x1}
    rel = path.relative_to(root)
    source = name.split("-LOC-")[0] if "-LOC-" in name else (rel.parts[0] if len(rel.parts) > 1 else "")
    return {"name": name, "source": source, "axis": ""} | dict.fromkeys(("slice", "y0", "y1", "x0", "x1"), -1)


def read_patch(path: Path) -> np.ndarray:
    """uint8 [h, w, 1] at the patch's true size. Unreadable files raise OSError/ValueError from the reader
    (callers skip them); a readable patch that is not 2D 8-bit grayscale raises :class:`PatchError`."""
    image = tifffile.imread(path)
    if image.size == 0:
        raise OSError(f"{path}: no image data")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2 or image.dtype != np.uint8:
        raise PatchError(
            f"{path}: patch is {image.dtype} {image.shape}, expected a 2D uint8 image; every patch of a CEM500K "
            "folder must be 8-bit grayscale (curate other data with cemjax-curate first)"
        )
    return image[..., None]
