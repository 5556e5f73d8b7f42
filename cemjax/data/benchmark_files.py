"""Reading the segmentation benchmarks' files, laid out as the reference's setup scripts leave them.

Where each benchmark's files lie is its `layout` in `cemjax.benchmarks`; under the benchmarks root:

- 2D sets: ``<dir>/<split>/images/<name>`` paired with ``<dir>/<split>/masks/<name>`` (png/tif);
- 3D sets: ``<dir>/3d/<split>/images/<name>`` and ``…/masks/<name>`` (nrrd, nii/nii.gz, tif, h5);
- all_mito: tiles cut from the other sets' training data (:func:`all_mito_tiles`).

Every problem with the files (missing split, image/mask size mismatch, label outside the class list, an
unreadable file) raises :class:`BenchmarkError`, whose message is one line naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cemjax.benchmarks import get
from cemjax.common.errors import InputError
from cemjax.io import EMReadError, open_em, rgb_to_gray, to_uint8

EXTS_2D = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
EXTS_3D = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".tif", ".tiff", ".h5", ".hdf5")
ALL_MITO_TILE = 256
ALL_MITO_MIN_FILLED = 0.05  # tiles with fewer than 5% of 256² non-zero image pixels are dropped


class BenchmarkError(InputError):
    """A problem with one benchmark file or folder; str() is one line naming it."""


def split_dir(root: str | os.PathLike, name: str, folder: str) -> Path:
    """The folder holding ``images/`` and ``masks/`` of one split; BenchmarkError if it is missing."""
    layout = get(name).layout
    base = Path(root) / layout.dir / ("3d" if layout.kind == "3d" else "") / folder
    for sub in ("images", "masks"):
        if not (base / sub).is_dir():
            raise BenchmarkError(
                f"{base / sub}: missing folder of {name} split '{folder}' (expected the layout left by the "
                "reference's evaluation/setup_benchmarks/setup_data.py)"
            )
    return base


def _suffix(path: Path) -> str:
    low = path.name.lower()
    return ".nii.gz" if low.endswith(".nii.gz") else path.suffix.lower()


def pairs(root: str | os.PathLike, name: str, folder: str) -> list[tuple[Path, Path]]:
    """Sorted (image, mask) paths of one split; masks pair with images by identical file name."""
    base = split_dir(root, name, folder)
    exts = EXTS_3D if get(name).layout.kind == "3d" else EXTS_2D
    images = sorted(p for p in (base / "images").iterdir() if _suffix(p) in exts and not p.name.startswith("."))
    if not images:
        raise BenchmarkError(f"{base / 'images'}: no {'/'.join(exts)} files for {name}")
    out = []
    for image in images:
        mask = base / "masks" / image.name
        if not mask.is_file():
            raise BenchmarkError(f"{image}: no mask {mask} with the same file name")
        out.append((image, mask))
    return out


def read_array(path: Path, ndim: int) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """A whole 2D (ndim 2) or 3D file as numpy (RGB reduced to gray) and its spacing in nm (or None)."""
    try:
        with open_em(path) as em:
            array = np.asarray(em.data[...])
            array = rgb_to_gray(array) if em.rgb else array
            spacing = em.spacing
    except EMReadError as err:
        raise BenchmarkError(str(err)) from None
    except Exception as err:  # a library error about one file: name the file
        raise BenchmarkError(f"{path}: unreadable ({type(err).__name__}: {str(err)[:160]})") from None
    if array.ndim != ndim:
        kind = "image" if ndim == 2 else "volume"
        raise BenchmarkError(f"{path}: {array.ndim}D array {array.shape}, expected a {ndim}D {kind}")
    return array, (spacing[-ndim:] if spacing else None)


def image_u8(array: np.ndarray) -> np.ndarray:
    """EM image → uint8 (integer ranges scaled; floats by their min/max, as ``cemjax.io.to_uint8``)."""
    return array if array.dtype == np.uint8 else to_uint8(array)


def check_mask(mask: np.ndarray, path: Path, classes: tuple[str, ...], name: str) -> np.ndarray:
    """The mask as uint8 if every value is a class index; else BenchmarkError naming the file."""
    values = np.unique(mask)
    bad = values[(values < 0) | (values >= len(classes)) | (values != np.round(values))]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5].tolist()) + (", …" if bad.size > 5 else "")
        raise BenchmarkError(
            f"{path}: labels {{{shown}}} outside the class list of {name} (0–{len(classes) - 1}: {', '.join(classes)})"
        )
    return mask.astype(np.uint8)


def read_pair(image_path: Path, mask_path: Path, name: str, ndim: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(uint8 image, uint8 mask, spacing or None) of one pair, checked for equal shapes and class values."""
    image, spacing = read_array(image_path, ndim)
    mask, _ = read_array(mask_path, ndim)
    if image.shape != mask.shape:
        raise BenchmarkError(f"{mask_path}: mask shape {mask.shape} differs from image {image_path.name} {image.shape}")
    return image_u8(image), check_mask(mask, mask_path, get(name).classes, name), spacing


def iter_planes(volume: np.ndarray, axes: tuple[int, ...]) -> Iterator[tuple[int, int, np.ndarray]]:
    """(SimpleITK axis, index, plane) for every plane of a [Z, Y, X] volume along each axis (2 = xy planes)."""
    for axis in axes:
        for index in range(volume.shape[2 - axis]):
            yield axis, index, np.take(volume, index, axis=2 - axis)


def tile_starts(size: int, tile: int = ALL_MITO_TILE) -> np.ndarray:
    """Tile origins covering ``size`` px, the last ones shifted back to overlap (the reference's create_patches)."""
    starts = np.arange(0, size, tile)
    if size % tile:
        overlap = len(starts) * tile - size
        starts = starts - np.linspace(0, overlap, len(starts)).astype(np.int64)
    return starts


def tiles(image: np.ndarray, mask: np.ndarray, label: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(y, x, image tile, binary mask tile) of the 256-px tiling, without tiles < 5% non-zero image pixels."""
    for y in tile_starts(image.shape[0]):
        for x in tile_starts(image.shape[1]):
            im = image[y : y + ALL_MITO_TILE, x : x + ALL_MITO_TILE]
            if np.count_nonzero(im) >= ALL_MITO_MIN_FILLED * ALL_MITO_TILE**2:
                yield int(y), int(x), im, (mask[y : y + ALL_MITO_TILE, x : x + ALL_MITO_TILE] == label).astype(np.uint8)


def all_mito_tiles(root: str | os.PathLike) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 image tile, uint8 mito tile) of All Mitochondria's training set: the training sets of
    Perez-mito, Lucchi++, Kasthuri++ and the 2D slices of UroCell (axes 0, 1, 2) and Guay (axis 2), mito
    class only, cut into 256×256 tiles (smaller where the image is), nearly empty tiles dropped."""
    for name, label in get("all_mito").evaluation.sources:
        layout = get(name).layout
        ndim = 3 if layout.kind == "3d" else 2
        for image_path, mask_path in pairs(root, name, "train"):
            image, mask, _ = read_pair(image_path, mask_path, name, ndim)
            stem = image_path.name.split(".")[0]
            if ndim == 2:
                planes = [(f"{name}/{stem}", image, mask)]
            else:
                planes = (
                    (f"{name}/{stem}_{axis}_{index}", plane, np.take(mask, index, axis=2 - axis))
                    for axis, index, plane in iter_planes(image, layout.slice_axes)
                )
            for prefix, im, ms in planes:
                for y, x, tile, tile_mask in tiles(im, ms, label):
                    yield f"{prefix}_{y}_{x}", tile, tile_mask
