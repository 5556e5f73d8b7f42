"""Open EM files lazily: tif/tiff (multi-page = volume), png, jpg, mrc, nrrd, h5/hdf5, zarr / OME-Zarr.

Every reader returns an `EMArray` whose `data` supports numpy basic slicing without loading the file:
np.memmap (uncompressed tif, mrc, raw nrrd), zarr arrays (compressed tif via tifffile's zarr store, zarr),
h5py datasets. Only png/jpg and compressed nrrd are decoded whole (they are 2D or small by nature).
Spacing is (sz, sy, sx) in nanometres, or None where the file does not say.
"""

from __future__ import annotations

import json
import os
import stat

import mrcfile
import nrrd
import numpy as np
import tifffile
import zarr
from PIL import Image

from cemjax.io.array import UNIT_NM, EMArray, EMReadError
from cemjax.io.chunked import open_h5, open_zarr
from cemjax.io.convert import check_dtype
from cemjax.io.nifti import open_nifti

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
TIFF_EXTS = (".tif", ".tiff")
SUFFIXES = IMAGE_EXTS + TIFF_EXTS + (".mrc", ".rec", ".st", ".map", ".nrrd", ".nhdr", ".h5", ".hdf5", ".hdf", ".zarr")
SUFFIXES += (".nii", ".nii.gz")


def open_em(path: str | os.PathLike, spacing: tuple[float, float, float] | None = None) -> EMArray:
    """Open `path` lazily and validate its shape and dtype. Raises EMReadError (one line) on any problem.

    `spacing` (sz, sy, sx nm) overrides the file's metadata; a sidecar `<path>.json` with
    {"spacing": [sz, sy, sx]} does too, with lower priority than the argument. `file.h5::key` picks a dataset.
    """
    spath = str(path)
    fpath, _, key = spath.partition("::")
    try:
        _check_readable(fpath)
        em = _dispatch(fpath, key or None)
    except EMReadError:
        raise
    except Exception as e:  # any library error becomes one line naming the file
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise EMReadError(spath, f"unreadable ({type(e).__name__}: {msg[:160]})") from e
    em.path = spath
    try:
        _validate(em)
    except EMReadError:
        em.close()
        raise
    sidecar = _sidecar_spacing(fpath)
    em.spacing = tuple(spacing) if spacing is not None else (sidecar or em.spacing)
    return em


def _check_readable(path: str) -> None:
    if os.path.islink(path) and not os.path.exists(path):
        raise EMReadError(path, "broken symbolic link")
    if not os.path.exists(path):
        raise EMReadError(path, "no such file")
    st = os.stat(path)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise EMReadError(path, "not a regular file (a FIFO, socket or device); not opened")
    # Tests and containers often run as root, which can read anything; a file nobody may read is still
    # refused so that curation behaves the same for every user.
    if not (st.st_mode & (stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)) or not os.access(path, os.R_OK):
        raise EMReadError(path, "permission denied (not readable)")
    if os.path.isfile(path) and st.st_size == 0:
        raise EMReadError(path, "empty file (0 bytes)")


def _dispatch(path: str, key: str | None) -> EMArray:
    low = path.lower().rstrip("/")
    if low.endswith(".zarr") or os.path.isdir(path) and os.path.exists(os.path.join(path, "zarr.json")):
        return open_zarr(path)
    if os.path.isdir(path):
        raise EMReadError(path, "is a folder, not an image file")
    ext = os.path.splitext(low)[1]
    if ext in TIFF_EXTS:
        return _open_tiff(path)
    if ext in IMAGE_EXTS:
        return _open_pil(path)
    if ext in (".mrc", ".rec", ".st", ".map"):
        return _open_mrc(path)
    if ext in (".nrrd", ".nhdr"):
        return _open_nrrd(path)
    if ext in (".h5", ".hdf5", ".hdf"):
        return open_h5(path, key)
    if ext in (".nii", ".gz") and low.endswith((".nii", ".nii.gz")):
        return open_nifti(path)
    raise EMReadError(path, f"unsupported file type '{ext or '(none)'}'")


def _validate(em: EMArray) -> None:
    try:
        check_dtype(em.dtype)
    except ValueError as e:
        raise EMReadError(em.path, str(e)) from None
    if em.ndim not in (2, 3):
        raise EMReadError(em.path, f"{em.ndim}D array {tuple(em.data.shape)} (need 2D image or 3D volume)")
    if min(em.shape) == 0:
        raise EMReadError(em.path, f"empty array {tuple(em.data.shape)}")


def _open_tiff(path: str) -> EMArray:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        rgb = series.axes.endswith("S")
        spacing = _tiff_spacing(tif)
    try:
        data = tifffile.memmap(path, mode="r")
        closers = [lambda: getattr(data, "_mmap", None) and data._mmap.close()]
    except ValueError:  # compressed or non-contiguous: chunked access through tifffile's zarr store
        store = tifffile.imread(path, aszarr=True)
        data = zarr.open(store, mode="r")
        closers = [store.close]
    return EMArray(path, data, spacing, rgb, closers)


def _tiff_spacing(tif) -> tuple[float, float, float] | None:
    page = tif.pages[0]
    ij = tif.imagej_metadata or {}
    unit = str(ij.get("unit", "")).lower()
    xres = page.tags.get("XResolution")
    yres = page.tags.get("YResolution")
    if xres is None or not unit or unit not in UNIT_NM:
        return None
    scale = UNIT_NM[unit]

    def inv(tag):
        num, den = tag.value
        return scale * den / num if num else None

    sx, sy = inv(xres), inv(yres or xres)
    sz = float(ij["spacing"]) * scale if "spacing" in ij else None
    if not sx or not sy or not sz:
        return None
    return (sz, sy, sx)


def _open_pil(path: str) -> EMArray:
    with Image.open(path) as im:
        im.load()
        if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
            im = im.convert("RGB")
        data = np.asarray(im)
    rgb = data.ndim == 3
    if rgb and data.shape[-1] == 2:  # 'LA': gray + alpha
        data, rgb = data[..., 0], False
    return EMArray(path, data, None, rgb)


def _open_mrc(path: str) -> EMArray:
    mrc = mrcfile.mmap(path, mode="r", permissive=False)
    vs = mrc.voxel_size  # Å, (x, y, z)
    spacing = None
    if float(vs.x) > 0 and float(vs.y) > 0 and float(vs.z) > 0:
        spacing = (float(vs.z) / 10.0, float(vs.y) / 10.0, float(vs.x) / 10.0)
    data = mrc.data
    if data is None:
        mrc.close()
        raise EMReadError(path, "MRC file holds no data")
    return EMArray(path, data, spacing, False, [mrc.close])


def _open_nrrd(path: str) -> EMArray:
    with open(path, "rb") as fh:
        header = nrrd.read_header(fh)
        offset = fh.tell()
    sizes = tuple(int(s) for s in header["sizes"])[::-1]  # header is fastest-first; numpy wants C order
    if header.get("encoding") == "raw" and "data file" not in header and "datafile" not in header:
        dtype = np.dtype(nrrd.reader._determine_datatype(header))
        need = offset + int(np.prod(sizes)) * dtype.itemsize
        if os.path.getsize(path) < need:
            raise EMReadError(path, f"truncated NRRD ({os.path.getsize(path)} of {need} bytes)")
        data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=sizes)
    else:
        data, header = nrrd.read(path, index_order="C")
    spacing = None
    if "spacings" in header:
        sp = [float(s) for s in header["spacings"]][::-1]
    elif "space directions" in header:
        dirs = np.asarray(header["space directions"], dtype=float)
        sp = [float(np.linalg.norm(d)) for d in dirs if np.all(np.isfinite(d))][::-1]
    else:
        sp = []
    units = [str(u).lower() for u in header.get("space units", [])][::-1]
    if len(sp) == 3 and all(s > 0 for s in sp):
        scale = UNIT_NM.get(units[0], 1.0) if units else 1.0
        spacing = tuple(s * scale for s in sp)
    return EMArray(path, data, spacing, False)


def _sidecar_spacing(path: str) -> tuple[float, float, float] | None:
    side = path.rstrip("/") + ".json"
    if not os.path.isfile(side):
        return None
    try:
        with open(side) as f:
            sp = json.load(f).get("spacing")
        return tuple(float(v) for v in sp) if sp and len(sp) == 3 else None
    except (OSError, ValueError, TypeError):
        return None
