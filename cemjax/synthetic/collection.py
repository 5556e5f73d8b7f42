"""A mixed raw EM collection: the input the curation pipeline starts from (docs/method.md §1).

Each source is one "experiment" in its own folder, ``<root>/<source name>/``: a folder of 2D images or one
volume file. ``<root>/collection.json`` (the sidecar, :data:`SIDECAR`) lists per source: name, modality,
kind ("images" | "volume"), format, dtype, spacing_nm ((sy, sx) or (sz, sy, sx)), anisotropy
(|sx − sz| / sx), inverted, style, junk kinds present, files (relative path, shape, junk kind or null) and
near_duplicates (pairs of relative paths: repeated frames, an exact copy). Volumes carry near-duplicates
implicitly (adjacent sections). The sources cover png/tif folders and mrc/nrrd/h5/zarr (OME 0.5 and 0.4)
and multi-page tif volumes; uint8/uint16/float32; iso- and anisotropic (on both sides of the 0.2
threshold); one inverted (FIB-SEM detector contrast); blank frames, black slices and zero padding.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cemjax.common.files import atomic_path
from cemjax.synthetic.classes import CLASS_NAMES
from cemjax.synthetic.junk import add_zero_padding, make_junk_image
from cemjax.synthetic.samples import make_em_image, make_em_volume
from cemjax.synthetic.writers import write_array

SIDECAR = "collection.json"


@dataclass(frozen=True)
class Source:
    """Recipe of one source. spacing_nm is (pixel, pixel) for image folders, (sz, sy, sx) for volumes."""

    name: str
    modality: str
    kind: str
    fmt: str
    dtype: str
    style: str
    spacing_nm: tuple[float, ...]
    inverted: bool = False
    junk: tuple[str, ...] = ()
    ome_version: str = "0.5"


SOURCES = (
    Source("tem_hippocampus_png", "TEM", "images", "png", "uint8", "neuropil", (6.0, 6.0), junk=("empty_resin",)),
    Source("tem_liver_tif16", "TEM", "images", "tif", "uint16", "tissue", (10.0, 10.0), junk=("zero_padding",)),
    Source("tem_hela_float_tif", "TEM", "images", "tif", "float32", "culture", (14.0, 14.0), junk=("saturated",)),
    Source("fibsem_brain_mrc", "FIB-SEM", "volume", "mrc", "uint8", "neuropil", (8.0, 8.0, 8.0), inverted=True),
    Source("sbfsem_kidney_nrrd", "SBF-SEM", "volume", "nrrd", "uint16", "tissue", (40.0, 10.0, 10.0)),
    Source("fibsem_cells_h5", "FIB-SEM", "volume", "h5", "float32", "tissue", (10.0, 10.0, 10.0),
           junk=("zero_padding",)),
    Source("fibsem_neuropil_zarr", "FIB-SEM", "volume", "zarr", "uint8", "neuropil", (9.0, 8.0, 8.0)),
    Source("sstem_cortex_tif", "ssTEM", "volume", "tif", "uint8", "neuropil", (45.0, 6.0, 6.0),
           junk=("black",)),
    Source("fibsem_culture_zarr04", "FIB-SEM", "volume", "zarr", "uint16", "culture", (16.0, 12.0, 12.0),
           ome_version="0.4"),
)  # fmt: skip


@dataclass(frozen=True)
class CollectionPreset:
    image_shape: tuple[int, int]
    images_per_source: int
    volume_shape: tuple[int, int, int]


COLLECTION_PRESETS = {
    "small": CollectionPreset((96, 128), 3, (12, 64, 80)),
    "tiny": CollectionPreset((240, 256), 2, (6, 232, 240)),  # the smallest with 224-px patches (demo chain test)
    "demo": CollectionPreset((768, 768), 4, (40, 256, 256)),
}


def _image_folder(root: Path, source: Source, preset: CollectionPreset, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    ext = {"png": "png", "tif": "tif"}[source.fmt]
    files, duplicates = [], []
    h, w = preset.image_shape
    for i in range(preset.images_per_source):
        scene_seed = int(rng.integers(2**31))
        sample = make_em_image((h + 8, w + 8), source.spacing_nm[-1], source.style, scene_seed, source.dtype)
        image, junk = sample.image[:h, :w], None
        if i == 0 and "zero_padding" in source.junk:
            image, junk = add_zero_padding(image, rng, 0.6), "zero_padding"
        name = f"{source.name}_{i:03d}.{ext}"
        files.append(_write(root, source, name, image, junk))
        if i == 0:  # the same field imaged again, shifted by a few pixels: a near-duplicate
            again = make_em_image(
                (h + 8, w + 8), source.spacing_nm[-1], source.style, scene_seed, source.dtype, noise_seed=1
            ).image
            dy, dx = (int(v) for v in rng.integers(1, 6, 2))
            files.append(_write(root, source, f"{source.name}_{i:03d}_repeat.{ext}", again[dy : dy + h, dx : dx + w]))
            duplicates.append([files[-2]["path"], files[-1]["path"]])
    copy = f"{source.name}/{source.name}_copy.{ext}"
    with atomic_path(root / copy) as tmp:
        shutil.copyfile(root / files[0]["path"], tmp)
    files.append({**files[0], "path": copy})
    duplicates.append([files[0]["path"], copy])
    for kind in source.junk:
        if kind == "zero_padding":
            continue
        junk_image = make_junk_image(kind, preset.image_shape, int(rng.integers(2**31)))
        files.append(_write(root, source, f"{source.name}_{kind}.{ext}", _as_dtype(junk_image, source.dtype), kind))
    return {"files": files, "near_duplicates": duplicates}


def _as_dtype(image_u8: np.ndarray, dtype: str) -> np.ndarray:
    """Carry an 8-bit junk image into the source's dtype (same brightness fraction)."""
    if dtype == "uint16":
        return (image_u8.astype(np.uint16) * 257).astype(np.uint16)
    if dtype == "float32":
        return (image_u8.astype(np.float32) / 255.0).astype(np.float32)
    return image_u8


def _volume(root: Path, source: Source, preset: CollectionPreset, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sample = make_em_volume(preset.volume_shape, source.spacing_nm, source.style, seed, source.dtype, source.inverted)
    volume = sample.image
    if "zero_padding" in source.junk:
        volume = add_zero_padding(volume, rng, 0.3)
    if "black" in source.junk:  # two blank sections at the start (beam off / lost sections)
        volume = volume.copy()
        volume[:2] = 0
    suffix = {"mrc": "mrc", "nrrd": "nrrd", "h5": "h5", "zarr": "zarr", "tif": "tif"}[source.fmt]
    kwargs = {"ome_version": source.ome_version} if source.fmt == "zarr" else {}
    entry = _write(root, source, f"{source.name}.{suffix}", volume, None, **kwargs)
    return {"files": [entry], "near_duplicates": []}


def _write(root: Path, source: Source, name: str, array: np.ndarray, junk: str | None = None, **kwargs) -> dict:
    relative = f"{source.name}/{name}"
    spacing = source.spacing_nm if array.ndim == len(source.spacing_nm) else source.spacing_nm[-2:]
    write_array(root / relative, array, spacing, **kwargs)
    return {"path": relative, "shape": list(array.shape), "junk": junk}


def _write_source(root: Path, index: int, preset: CollectionPreset, seed: int) -> dict:
    """One source's files and its sidecar entry (independent of every other source: its seed is its own)."""
    source = SOURCES[index]
    writer = _image_folder if source.kind == "images" else _volume
    result = writer(root, source, preset, seed * 1000 + index)
    spacing = list(source.spacing_nm)
    anisotropy = abs(spacing[-1] - spacing[0]) / spacing[-1] if source.kind == "volume" else 0.0
    return {
        "name": source.name,
        "modality": source.modality,
        "kind": source.kind,
        "format": source.fmt,
        "dtype": source.dtype,
        "spacing_nm": spacing,
        "axes": "zyx" if source.kind == "volume" else "yx",
        "anisotropy": round(anisotropy, 6),
        "inverted": source.inverted,
        "style": source.style,
        "junk": list(source.junk),
        **result,
    }


def write_raw_collection(root: str | os.PathLike, size: str = "small", seed: int = 0, workers: int = 0) -> dict:
    """Write every source of :data:`SOURCES` under ``root`` and the JSON sidecar; returns the sidecar dict.

    ``workers`` > 1 writes sources in that many spawned processes (0: one per core, up to 4, for the "demo"
    preset and 1 for the small ones); the files are identical either way: every source draws from its own seed."""
    root = Path(root)
    preset = COLLECTION_PRESETS[size]
    workers = workers or min(os.cpu_count() or 1, 4 if size == "demo" else 1)
    if workers > 1:
        context = multiprocessing.get_context("spawn")  # safe after JAX / TF started threads in the parent
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [pool.submit(_write_source, root, i, preset, seed) for i in range(len(SOURCES))]
            sources = [job.result() for job in jobs]
    else:
        sources = [_write_source(root, i, preset, seed) for i in range(len(SOURCES))]
    sidecar = {"version": 1, "seed": seed, "size": size, "class_names": list(CLASS_NAMES), "sources": sources}
    with atomic_path(root / SIDECAR) as tmp:
        Path(tmp).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return sidecar
