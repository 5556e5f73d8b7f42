"""The segmentation benchmarks of REFERENCE §4 as the reference's setup scripts lay them out, read into numpy.

``BENCHMARKS`` holds one :class:`BenchmarkSpec` per TFDS config of ``cem_benchmarks``. Files are found under
the benchmarks root (what ``setup_data.py`` was given; see :mod:`cemjax.synthetic.benchmarks` for the names):

- 2D sets: ``<dir>/<split>/images/<name>`` paired with ``<dir>/<split>/masks/<name>`` (png/tif);
- 3D sets: ``<dir>/3d/<split>/images/<name>`` and ``…/masks/<name>`` (nrrd, nii/nii.gz, tif, h5);
- all_mito: tiles cut from the other sets' training data (:func:`all_mito_tiles`).

Every problem with the files (missing split, image/mask size mismatch, label outside the class list, an
unreadable file) raises :class:`BenchmarkError`, whose message is one line naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cemjax.io import EMReadError, open_em, rgb_to_gray, to_uint8

EXTS_2D = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
EXTS_3D = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".tif", ".tiff", ".h5", ".hdf5")
ALL_MITO_TILE = 256
ALL_MITO_MIN_FILLED = 0.05  # tiles with fewer than 5% of 256² non-zero image pixels are dropped
_UNIT_NM = {"mm": 1e6, "micron": 1e3, "meter": 1e9, "nm": 1.0}


class BenchmarkError(ValueError):
    """A problem with one benchmark file or folder; str() is one line naming it."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: its folder under the root, 2D or 3D, class names (mask value = index), splits
    {tfds split: folder}, the SimpleITK axes its volumes are sliced along for 2D training (2: xy planes,
    1: xz, 0: yz), and the fine-tuning augmentation of REFERENCE §4: crop size in px, Gaussian noise + blur,
    crop-non-empty-mask (p 0.8)."""

    dir: str
    kind: str
    classes: tuple[str, ...]
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    slice_axes: tuple[int, ...] = ()
    crop: int = 512
    noise_blur: bool = False
    nonempty: bool = False


_MITO = ("background", "mito")
BENCHMARKS = {
    "lucchi_pp": BenchmarkSpec("lucchi_pp", "2d", _MITO),
    "kasthuri_pp": BenchmarkSpec("kasthuri_pp", "2d", _MITO, nonempty=True),
    "perez_mito": BenchmarkSpec("perez/mito", "2d", _MITO, crop=480),
    "perez_lyso": BenchmarkSpec("perez/lyso", "2d", ("background", "lyso"), crop=480),
    "perez_nuclei": BenchmarkSpec("perez/nuclei", "2d", ("background", "nuclei"), crop=480),
    "perez_nucleoli": BenchmarkSpec("perez/nucleoli", "2d", ("background", "nucleoli"), crop=480),
    "guay": BenchmarkSpec(
        "guay", "3d", ("back", "cell", "mito", "can_chan", "alpha_gran", "dense_gran", "dense_gran_core"),
        (("train", "train"), ("validation", "valid"), ("test", "test")), (2,), noise_blur=True,
    ),
    "urocell": BenchmarkSpec("urocell", "3d", ("back", "lyso", "mito"), slice_axes=(0, 1, 2), crop=224),
    "cremi": BenchmarkSpec("cremi", "3d", ("background", "synaptic_cleft"), slice_axes=(2,), nonempty=True),
    "all_mito": BenchmarkSpec("all_mito", "2d", _MITO, (("train", "train"),), crop=256, noise_blur=True),
}  # fmt: skip
# all_mito's sources: (benchmark, mito label in its masks), in the reference's order.
ALL_MITO_SOURCES = (("perez_mito", 1), ("lucchi_pp", 1), ("kasthuri_pp", 1), ("urocell", 2), ("guay", 2))


def split_dir(root: str | os.PathLike, name: str, folder: str) -> Path:
    """The folder holding ``images/`` and ``masks/`` of one split; BenchmarkError if it is missing."""
    spec = BENCHMARKS[name]
    base = Path(root) / spec.dir / ("3d" if spec.kind == "3d" else "") / folder
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
    exts = EXTS_3D if BENCHMARKS[name].kind == "3d" else EXTS_2D
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
        if _suffix(path) in (".nii", ".nii.gz"):
            array, spacing = _read_nifti(path)
        else:
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


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    import nibabel

    nii = nibabel.load(os.fspath(path))
    array = np.asarray(nii.dataobj).T  # NIfTI (x, y, z) → numpy (z, y, x), as SimpleITK reads it
    unit = nii.header.get_xyzt_units()[0]
    zooms = [float(z) for z in nii.header.get_zooms()[:3]][::-1]
    spacing = tuple(z * _UNIT_NM[unit] for z in zooms) if unit in _UNIT_NM and all(zooms) else None
    return np.ascontiguousarray(array), spacing


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
    return image_u8(image), check_mask(mask, mask_path, BENCHMARKS[name].classes, name), spacing


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
    for name, label in ALL_MITO_SOURCES:
        spec = BENCHMARKS[name]
        ndim = 3 if spec.kind == "3d" else 2
        for image_path, mask_path in pairs(root, name, "train"):
            image, mask, _ = read_pair(image_path, mask_path, name, ndim)
            stem = image_path.name.split(".")[0]
            if ndim == 2:
                planes = [(f"{name}/{stem}", image, mask)]
            else:
                planes = (
                    (f"{name}/{stem}_{axis}_{index}", plane, np.take(mask, index, axis=2 - axis))
                    for axis, index, plane in iter_planes(image, spec.slice_axes)
                )
            for prefix, im, ms in planes:
                for y, x, tile, tile_mask in tiles(im, ms, label):
                    yield f"{prefix}_{y}_{x}", tile, tile_mask
