"""The whole synthetic world in one folder: raw collection, benchmark layouts and contact sheets.

``<out>/raw/`` (:func:`write_raw_collection`, sidecar ``raw/collection.json``), ``<out>/benchmarks/``
(:func:`write_benchmarks`), ``<out>/sheets/*.png`` and ``<out>/world.json`` (what was written where).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from cemjax.common.files import atomic_path
from cemjax.common.pictures import write_contact_sheet
from cemjax.synthetic.benchmarks import write_benchmarks
from cemjax.synthetic.classes import CLASS_COLORS
from cemjax.synthetic.collection import write_raw_collection
from cemjax.synthetic.junk import make_quality_patches
from cemjax.synthetic.samples import make_em_image, make_em_volume

SHEET_SIZES = {"small": (128, (16, 64, 64), 16), "demo": (512, (64, 192, 192), 32)}


def write_sheets(out: str | os.PathLike, size: str = "small", seed: int = 0) -> list[str]:
    """Contact sheets of the styles (with label overlays), orthogonal views of volumes, quality patches."""
    out = Path(out)
    side, volume_shape, n_patches = SHEET_SIZES[size]
    images, labels, titles = [], [], []
    for k, (style, pixel) in enumerate((("neuropil", 6.0), ("tissue", 10.0), ("culture", 16.0))):
        sample = make_em_image((side, side), pixel, style, seed=seed * 10 + k)
        images += [sample.image, sample.image]
        labels += [None, sample.labels]
        titles += [f"{style} {pixel:g} nm", f"{style} labels"]
    paths = [write_contact_sheet(out / "styles.png", images, labels, titles, ncols=2, palette=CLASS_COLORS)]
    views, names = [], []
    for spacing, invert in (((8.0, 8.0, 8.0), False), ((40.0, 8.0, 8.0), True)):
        shape = volume_shape if spacing[0] == spacing[1] else (volume_shape[0] // 4, *volume_shape[1:])
        vol = make_em_volume(shape, spacing, "neuropil", seed=seed, invert=invert)
        stretch = int(round(spacing[0] / spacing[1]))
        views += [vol.image[shape[0] // 2], np.repeat(vol.image[:, shape[1] // 2], stretch, axis=0)]
        names += [
            f"xy {spacing[0]:g}x{spacing[1]:g} nm",
            "xz (z stretched)" + (" inverted" if invert else ""),
        ]
    paths.append(write_contact_sheet(out / "volumes.png", views, titles=names, ncols=2))
    patches, informative, kinds = make_quality_patches(n_patches, seed=seed, size=224 if size == "demo" else 96)
    titles = [f"{k} ({'keep' if g else 'drop'})" for k, g in zip(kinds, informative, strict=True)]
    paths.append(write_contact_sheet(out / "quality_patches.png", list(patches), titles=titles, ncols=8))
    return paths


def write_world(
    out: str | os.PathLike, seed: int = 0, size: str = "small", benchmarks: tuple[str, ...] | None = None
) -> dict:
    """Write raw collection, benchmarks (all, or the named ones) and sheets under ``out``; returns (and writes)
    ``world.json``."""
    out = Path(out)
    collection = write_raw_collection(out / "raw", size, seed)
    small = "small" if size == "tiny" else size  # "tiny": a raw collection with 224-px patches, small otherwise
    benchmarks = write_benchmarks(out / "benchmarks", small, seed, names=benchmarks)
    sheets = write_sheets(out / "sheets", small, seed)
    summary = {
        "seed": seed,
        "size": size,
        "raw": "raw/collection.json",
        "raw_sources": [s["name"] for s in collection["sources"]],
        "benchmarks": {name: len(paths) for name, paths in benchmarks.items()},
        "sheets": [os.path.relpath(p, out) for p in sheets],
    }
    with atomic_path(out / "world.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
