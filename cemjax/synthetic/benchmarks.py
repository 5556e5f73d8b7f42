"""Synthetic stand-ins for the segmentation benchmarks, laid out as the reference's setup scripts leave them.

Facts read from volume-em/cem-dataset, ``evaluation/setup_benchmarks/download_benchmarks.sh``,
``setup_data.py``, ``create_slices.py`` and ``evaluation/benchmark_configs/*.yaml`` (the paths after setup):

- ``lucchi_pp/{train,test}/{images,masks}/maskNNNN.png``: the images already carry ``mask`` + 4 digits; the
  setup renames each mask ``N.png`` to ``mask{N:04d}.png`` and rescales it 255 → 1 (binary mitochondria).
- ``kasthuri_pp/{train,test}/{images,masks}/*.png``: masks reduced to one channel, 255 → 1; images and masks
  pair by identical file name (the stems are the download's; ours are ``slice{N:04d}``).
- ``perez/{mito,lyso,nuclei,nucleoli}/{train,test}/{images,masks}/*.png``: the setup strips the prefix
  before the first dot (``<prefix>.<n>.png`` → ``<n>.png``); configs ``perez_mito`` … point to
  ``perez/<organelle>/``. Test images are only partly labelled (instance-matched evaluation): our test
  masks keep a random subset of the connected components.
- ``guay/3d/{train,valid,test}/{images,masks}/{train,eval,test}-images.nrrd``: uint8 nrrd; the label
  volume is renamed ``-labels`` → ``-images`` so both sides share one name. 7 classes (config order):
  back, cell, mito, can_chan, alpha_gran, dense_gran, dense_gran_core; evaluated on 2–6 masked to gt > 0.
- ``urocell/3d/{train,test}/{images,masks}/fib1-*``: train fib1-1-0-3, fib1-3-2-1, fib1-3-3-0, fib1-4-3-0;
  test fib1-0-0-0; mask = lyso + 2·mito (1 lysosome, 2 mitochondria). The reference keeps NIfTI
  (``.nii.gz``); we write ``.nrrd`` (same stem) to avoid a NIfTI dependency — both are read by SimpleITK.
- ``cremi/3d/{train,test}/{images,masks}/sample_{A,B,C}_20160501.nrrd``: A, B train, C test; mask = binary
  synaptic cleft (uint8).
- 2D slices of the 3D sets (what fine-tuning reads): ``<bench>/2d/<split>/{images,masks}/
  <stem>_<axis>_<index>.tiff`` with SimpleITK axis numbers (2: xy planes, 1: xz, 0: yz); guay and cremi
  use axis 2, urocell 0, 1 and 2. (The reference's ``range(0, size - 1)`` skips the last slice; we write
  every slice, the intended behaviour.)

Synthetic class mapping: guay back = outside cells, cell = cytoplasm + plasma membrane, mito = mitochondria,
can_chan = vesicles, alpha_gran = lysosomes, dense_gran = nucleus, dense_gran_core = nucleolus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from cemjax.synthetic import classes as C
from cemjax.synthetic.samples import EMSample, make_em_image, make_em_volume
from cemjax.synthetic.writers import write_nrrd, write_png, write_tif

GUAY_CLASS_NAMES = ("back", "cell", "mito", "can_chan", "alpha_gran", "dense_gran", "dense_gran_core")
BENCHMARKS_2D = ("lucchi_pp", "kasthuri_pp", "perez_mito", "perez_lyso", "perez_nuclei", "perez_nucleoli")
BENCHMARKS_3D = ("guay", "urocell", "cremi")
BENCHMARK_DIRS = {
    "lucchi_pp": "lucchi_pp",
    "kasthuri_pp": "kasthuri_pp",
    "perez_mito": "perez/mito",
    "perez_lyso": "perez/lyso",
    "perez_nuclei": "perez/nuclei",
    "perez_nucleoli": "perez/nucleoli",
    "guay": "guay",
    "urocell": "urocell",
    "cremi": "cremi",
}


@dataclass(frozen=True)
class Preset:
    """Sizes: 2D image (H, W) and images per split; 3D volume (Z, Y, X); pixel_scale multiplies the
    benchmarks' pixel sizes (tiny test images see more cells); slice_step thins the 2D slices of volumes."""

    image_shape: tuple[int, int]
    n_train: int
    n_test: int
    volume_shape: tuple[int, int, int]
    pixel_scale: float = 1.0
    slice_step: int = 1


PRESETS = {
    "small": Preset((96, 128), 2, 1, (12, 64, 64), pixel_scale=3.0, slice_step=4),
    # pixel_scale 2: a 128-px fine-tuning crop holds several organelles, so a few hundred CPU steps learn something
    # (at the benchmarks' own pixel sizes 200 steps left IoU at 0 for both inits: mostly empty crops)
    "demo": Preset((512, 512), 4, 2, (24, 192, 192), pixel_scale=2.0, slice_step=2),
}

# (style, pixel nm, target classes) per 2D benchmark; nuclei need a wide field of view.
_SPEC_2D = {
    "lucchi_pp": ("neuropil", 6.0, (C.MITOCHONDRIA,)),
    "kasthuri_pp": ("neuropil", 5.0, (C.MITOCHONDRIA,)),
    "perez_mito": ("tissue", 10.0, (C.MITOCHONDRIA,)),
    "perez_lyso": ("tissue", 15.0, (C.LYSOSOME,)),
    "perez_nuclei": ("tissue", 30.0, (C.NUCLEUS, C.NUCLEOLUS)),
    "perez_nucleoli": ("tissue", 30.0, (C.NUCLEOLUS,)),
}


def _with_target(make, target: tuple[int, ...], seed: int, min_fraction: float = 0.002) -> EMSample:
    """First of seeds seed·100, seed·100 + 1, … whose labels hold ≥ min_fraction of the target classes."""
    sample = None
    for k in range(25):
        sample = make(seed * 100 + k)
        if np.isin(sample.labels, target).mean() >= min_fraction:
            return sample
    return sample


def _partial(mask: np.ndarray, rng: np.random.Generator, keep: float = 0.6) -> np.ndarray:
    """Keep a random subset (at least one) of the connected components of a binary mask."""
    components, n = ndimage.label(mask)
    if n == 0:
        return mask
    kept = rng.random(n) < keep
    kept[rng.integers(n)] = True
    return np.isin(components, np.flatnonzero(kept) + 1).astype(np.uint8)


def write_benchmark_2d(root: str | os.PathLike, name: str, preset: Preset, seed: int) -> list[str]:
    """One 2D benchmark under ``root``; returns the written paths (images then masks, per split)."""
    style, pixel, target = _SPEC_2D[name]
    pixel = pixel * preset.pixel_scale if pixel < 20 else pixel
    base = Path(root) / BENCHMARK_DIRS[name]
    rng = np.random.default_rng(seed)
    paths = []
    for split, count in (("train", preset.n_train), ("test", preset.n_test)):
        for i in range(count):
            sample_seed = int(rng.integers(2**31))
            sample = _with_target(
                lambda s, style=style, pixel=pixel: make_em_image(preset.image_shape, pixel, style, seed=s),
                target,
                sample_seed % 10**6,
            )
            mask = np.isin(sample.labels, target).astype(np.uint8)
            if name.startswith("perez") and split == "test":
                mask = _partial(mask, rng)
            stem = {"lucchi_pp": f"mask{i:04d}", "kasthuri_pp": f"slice{i:04d}"}.get(name, f"{i:03d}")
            for sub, array in (("images", sample.image), ("masks", mask)):
                paths.append(write_png(base / split / sub / f"{stem}.png", array, sample.spacing_nm))
    return paths


def _guay_labels(sample: EMSample) -> np.ndarray:
    lut = np.zeros(len(C.CLASS_NAMES), np.uint8)
    lut[[C.BACKGROUND, C.MEMBRANE, C.MITOCHONDRIA, C.VESICLE, C.LYSOSOME, C.NUCLEUS, C.NUCLEOLUS]] = range(7)
    lut[C.CLEFT] = 1
    labels = lut[sample.labels]
    labels[(sample.cell_ids == 0) & (labels <= 1)] = 0
    labels[(sample.cell_ids > 0) & (labels == 0)] = 1
    return labels


_SPEC_3D = {
    # name: (style, spacing nm (z, y, x), [(split, stem)], slicing axes (SimpleITK numbering))
    "guay": ("tissue", (50.0, 10.0, 10.0), [("train", "train-images"), ("valid", "eval-images"),
                                             ("test", "test-images")], (2,)),
    "urocell": ("tissue", (16.0, 16.0, 16.0), [("train", "fib1-1-0-3"), ("train", "fib1-3-2-1"),
                                                ("train", "fib1-3-3-0"), ("train", "fib1-4-3-0"),
                                                ("test", "fib1-0-0-0")], (0, 1, 2)),
    "cremi": ("neuropil", (40.0, 4.0, 4.0), [("train", "sample_A_20160501"), ("train", "sample_B_20160501"),
                                             ("test", "sample_C_20160501")], (2,)),
}  # fmt: skip


def write_benchmark_3d(root: str | os.PathLike, name: str, preset: Preset, seed: int) -> list[str]:
    """One 3D benchmark: ``3d`` volumes (nrrd) and their ``2d`` slices (tiff); returns the written paths."""
    style, spacing, volumes, axes = _SPEC_3D[name]
    spacing = tuple(s * preset.pixel_scale for s in spacing)
    base = Path(root) / BENCHMARK_DIRS[name]
    rng = np.random.default_rng(seed)
    target = {"guay": (C.MITOCHONDRIA,), "urocell": (C.MITOCHONDRIA,), "cremi": (C.CLEFT,)}[name]
    paths = []
    for split, stem in volumes:
        sample = _with_target(
            lambda s: make_em_volume(preset.volume_shape, spacing, style, seed=s),
            target,
            int(rng.integers(10**6)),
            min_fraction=0.0005,
        )
        if name == "guay":
            mask = _guay_labels(sample)
        elif name == "urocell":
            mask = (sample.labels == C.LYSOSOME) + 2 * (sample.labels == C.MITOCHONDRIA)
        else:
            mask = sample.labels == C.CLEFT
        mask = mask.astype(np.uint8)
        for sub, array in (("images", sample.image), ("masks", mask)):
            paths.append(write_nrrd(base / "3d" / split / sub / f"{stem}.nrrd", array, spacing))
        for axis in axes:  # SimpleITK axis 2 = z (xy planes), 1 = y (xz planes), 0 = x (yz planes)
            numpy_axis = 2 - axis
            plane_spacing = [s for a, s in enumerate(spacing) if a != numpy_axis]
            for index in range(0, sample.image.shape[numpy_axis], preset.slice_step):
                for sub, array in (("images", sample.image), ("masks", mask)):
                    plane = np.take(array, index, axis=numpy_axis)
                    path = base / "2d" / split / sub / f"{stem}_{axis}_{index}.tiff"
                    paths.append(write_tif(path, plane, plane_spacing))
    return paths


def write_benchmarks(
    root: str | os.PathLike, size: str = "small", seed: int = 0, names: tuple[str, ...] | None = None
) -> dict[str, list[str]]:
    """Write every (or the named) benchmark under ``root``; returns {name: written paths}."""
    preset = PRESETS[size]
    written = {}
    for offset, name in enumerate(names or BENCHMARKS_2D + BENCHMARKS_3D):
        writer = write_benchmark_2d if name in BENCHMARKS_2D else write_benchmark_3d
        written[name] = writer(root, name, preset, seed * 1000 + offset)
    return written
