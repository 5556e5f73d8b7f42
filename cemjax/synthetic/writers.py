"""Writers to real EM file formats, each recording voxel spacing the way that format's users expect.

Arrays are (z, y, x) volumes or (y, x) images; ``spacing_nm`` is given in the same axis order, in nm.

=======  ==================================================================================================
format   where the spacing goes
=======  ==================================================================================================
.tif     ImageJ hyperstack: XResolution/YResolution = pixels per nm, ImageJ description ``unit=nm`` and
         ``spacing=sz`` (3D); multi-page for volumes. uint8, uint16, float32.
.png     pHYs chunk (pixels per metre; PIL reads it back as ``info['dpi']``, nm = 25.4e6 / dpi). 2D only,
         uint8 or uint16.
.mrc     header ``voxel_size`` in **Ångström** (MRC/CCP-EM convention; 1 nm = 10 Å), recorded (x, y, z).
         Data are stored (sections, rows, columns) = (z, y, x). uint8 is stored as mode 0 (signed int8,
         value − 128, as 8-bit-converted EM files are); uint16 as mode 6, float32 as mode 2.
.nrrd    ``space directions`` = diag(sx, sy[, sz]) and ``space units`` nm. NRRD lists axes fastest first,
         i.e. (x, y, z); the array is written in C order so pynrrd ``index_order='C'`` reads (z, y, x).
.h5      dataset (default ``raw``) with attrs ``element_size_um`` (z, y, x) in µm (ilastik/Fiji convention)
         and ``resolution`` (z, y, x) in nm (CREMI convention). gzip, no HDF5 timestamps.
.zarr    OME-Zarr: a group with one array per level (``0`` full resolution, ``1`` … 2× downsampled in y, x),
         ``multiscales`` metadata with axes (z, y, x) in nanometer and a ``scale`` coordinateTransformation
         per level. ome_version "0.5" → zarr v3 with the metadata under the ``ome`` attribute;
         "0.4" → zarr v2 with ``multiscales`` as a top-level attribute.
=======  ==================================================================================================

Every writer writes a temporary sibling and moves it into place with ``os.replace`` (atomic for files; for
the zarr directory the old one is removed first). Output bytes depend only on the inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import mrcfile
import nrrd
import numpy as np
import tifffile
import zarr
from PIL import Image

from cemjax.common.files import atomic_path

ARRAY_FORMATS = ("tif", "png", "mrc", "nrrd", "h5", "zarr")
_EXTENSIONS = {".tif": "tif", ".tiff": "tif", ".png": "png", ".mrc": "mrc", ".nrrd": "nrrd"}
_EXTENSIONS |= {".h5": "h5", ".hdf5": "h5", ".hdf": "h5", ".zarr": "zarr"}


def format_of(path: str | os.PathLike) -> str:
    """Format name (one of :data:`ARRAY_FORMATS`) from a file extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ValueError(f"unknown EM format for {path}")
    return _EXTENSIONS[suffix]


def write_array(path: str | os.PathLike, array: np.ndarray, spacing_nm: Sequence[float], **kwargs) -> str:
    """Write ``array`` with ``spacing_nm`` in the format named by the extension; returns the path."""
    writer = {"tif": write_tif, "png": write_png, "mrc": write_mrc, "nrrd": write_nrrd}
    writer |= {"h5": write_h5, "zarr": write_zarr}
    return writer[format_of(path)](path, array, spacing_nm, **kwargs)


def _check(array: np.ndarray, spacing_nm: Sequence[float]) -> tuple[np.ndarray, tuple[float, ...]]:
    array = np.ascontiguousarray(array)
    spacing = tuple(float(s) for s in spacing_nm)
    if array.ndim not in (2, 3) or len(spacing) != array.ndim:
        raise ValueError(f"need a 2D/3D array and one spacing per axis, got {array.shape} and {spacing}")
    return array, spacing


def write_tif(path, array: np.ndarray, spacing_nm: Sequence[float]) -> str:
    """ImageJ-style TIFF (multi-page for (z, y, x)); see the module table."""
    array, spacing = _check(array, spacing_nm)
    metadata = {"unit": "nm", "axes": "ZYX" if array.ndim == 3 else "YX"}
    if array.ndim == 3:
        metadata["spacing"] = spacing[0]
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, imagej=True, resolution=(1.0 / spacing[-1], 1.0 / spacing[-2]), metadata=metadata)
    return os.fspath(path)


def write_png(path, array: np.ndarray, spacing_nm: Sequence[float] | None = None) -> str:
    """8- or 16-bit grayscale PNG; spacing (y, x) nm in the pHYs chunk (x spacing is used for both)."""
    array = np.ascontiguousarray(array)
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG takes a 2D uint8/uint16 image, got {array.shape} {array.dtype}")
    options = {}
    if spacing_nm is not None:
        dpi = 25.4e6 / float(spacing_nm[-1])
        options["dpi"] = (dpi, dpi)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", **options)
    return os.fspath(path)


def write_mrc(path, array: np.ndarray, spacing_nm: Sequence[float]) -> str:
    """MRC2014 file; ``voxel_size`` in Å (x, y, z) = 10 × spacing_nm reversed."""
    array, spacing = _check(array, spacing_nm)
    if array.dtype == np.uint8:  # mrcfile would widen uint8 to mode 6; keep 8 bits as signed mode 0
        array = (array.astype(np.int16) - 128).astype(np.int8)
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(array)
            sx, sy = spacing[-1], spacing[-2]
            sz = spacing[0] if array.ndim == 3 else sx
            mrc.voxel_size = (sx * 10.0, sy * 10.0, sz * 10.0)
            mrc.header.label[0] = b"cemjax.synthetic"  # replaces mrcfile's dated label (reproducible bytes)
    return os.fspath(path)


def write_nrrd(path, array: np.ndarray, spacing_nm: Sequence[float]) -> str:
    """gzip NRRD with ``space directions`` (x first) in nm."""
    array, spacing = _check(array, spacing_nm)
    header = {
        "space dimension": array.ndim,
        "space directions": np.diag(spacing[::-1]),
        "space units": ["nm"] * array.ndim,
        "space origin": np.zeros(array.ndim),
        "encoding": "gzip",
    }
    with atomic_path(path) as tmp:
        nrrd.write(tmp, array, header, index_order="C")
        _drop_nrrd_timestamp(tmp)
    return os.fspath(path)


def _drop_nrrd_timestamp(path: str) -> None:
    """pynrrd writes a '# on <date>' comment line; remove it so files are byte-reproducible."""
    raw = Path(path).read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.startswith(b"# on ")]
    Path(path).write_bytes(b"\n".join(lines) + sep + body)


def write_h5(path, array: np.ndarray, spacing_nm: Sequence[float], dataset: str = "raw", mode: str = "w") -> str:
    """HDF5 dataset (``dataset`` may contain '/') with ``element_size_um`` and ``resolution`` attrs.

    mode "a" adds a dataset to an existing file (not atomic); "w" writes a new file atomically.
    """
    array, spacing = _check(array, spacing_nm)

    def fill(handle: h5py.File) -> None:
        group = handle
        for part in dataset.strip("/").split("/")[:-1]:
            group = group[part] if part in group else _untimed_group(group, part)
        name = dataset.strip("/").split("/")[-1]
        chunks = tuple(min(n, 64) for n in array.shape)
        ds = group.create_dataset(name, data=array, chunks=chunks, compression="gzip", track_times=False)
        ds.attrs["element_size_um"] = np.asarray(spacing) / 1000.0
        ds.attrs["resolution"] = np.asarray(spacing)

    if mode == "a" and Path(path).exists():
        with h5py.File(path, "a") as handle:
            fill(handle)
        return os.fspath(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            fill(handle)
    return os.fspath(path)


def _untimed_group(parent, name: str):
    """Create an HDF5 group without modification timestamps (so files are byte-reproducible)."""
    plist = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    plist.set_obj_track_times(False)
    gid = h5py.h5g.create(parent.id, name.encode(), gcpl=plist)
    return h5py.Group(gid)


def write_zarr(path, array: np.ndarray, spacing_nm: Sequence[float], levels: int = 2, ome_version: str = "0.5") -> str:
    """OME-Zarr image group with ``levels`` resolution levels (2× mean-downsampled in y, x)."""
    array, spacing = _check(array, spacing_nm)
    names = ["z", "y", "x"][-array.ndim :]
    axes = [{"name": n, "type": "space", "unit": "nanometer"} for n in names]
    pyramid, datasets = [array], []
    for level in range(levels):
        if level:
            pyramid.append(_downsample_yx(pyramid[-1]))
        factor = [1.0] * (array.ndim - 2) + [2.0**level] * 2
        scale = [s * f for s, f in zip(spacing, factor, strict=True)]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    multiscale = {"axes": axes, "datasets": datasets, "name": Path(path).stem}
    zarr_format = 3 if ome_version == "0.5" else 2
    with atomic_path(path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=zarr_format)
        for level, data in enumerate(pyramid):
            chunks = tuple(min(n, 64 if array.ndim == 3 else 256) for n in data.shape)
            group.create_array(str(level), data=data, chunks=chunks)
        if zarr_format == 3:
            group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
        else:
            group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    return os.fspath(path)


def _downsample_yx(array: np.ndarray) -> np.ndarray:
    """2× mean pooling over the last two axes (odd edges cropped), same dtype."""
    h, w = (array.shape[-2] // 2) * 2, (array.shape[-1] // 2) * 2
    a = array[..., :h, :w].astype(np.float64)
    pooled = (a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2] + a[..., 1::2, 1::2]) / 4
    return np.round(pooled).astype(array.dtype) if array.dtype.kind in "ui" else pooled.astype(array.dtype)
