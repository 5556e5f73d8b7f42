"""Where `cemjax.segment` writes: an OME-Zarr store (NGFF 0.4 on zarr v2 by default, or 0.5 on zarr v3) or a TIFF.

OME-Zarr layout (the input's voxel spacing as the `scale` of every level; levels 1.. are 2× smaller in y, x):

    out.zarr/labels/                      {"labels": ["segmentation", ("instances")]}
    out.zarr/labels/segmentation/0, 1, …  uint8 class indices; multiscales + image-label (colours, class names)
    out.zarr/labels/instances/0, 1, …     uint32 object ids (with instances)
    out.zarr/probabilities/0, 1, …        uint8 [C, (Z,) Y, X] ⌊p · 255⌋ (with probabilities)
    out.zarr/.cemjax/job.json             what the store is made from (model, input, settings)
    out.zarr/.cemjax/blocks/<k>           block k is written (markers make a killed run resumable)
    out.zarr/.cemjax/complete.json        written last, atomically: only then is the store complete

NGFF metadata is written at the end too, so a store a kill interrupted is no image to NGFF readers either.
TIFF: `out.tif` appears (an atomic rename of `.out.tif.partial`) only when every block is in it; the markers
live in `.out.tif.cemjax/` until then. zarr writes each chunk to a temporary file and renames it, and blocks
cover whole chunks, so a kill leaves every chunk old or new, never torn.
"""

from __future__ import annotations

import errno
import json
import os
import shutil

import numpy as np
import tifffile
import zarr

from cemjax.common.errors import InputError
from cemjax.common.files import write_json
from cemjax.common.pictures import label_colours
from cemjax.segment.grid import Block

MARKERS = ".cemjax"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class OutputError(InputError):
    """An output that cannot be written as asked (exists, disk full); the message says what to do."""


def no_space(path: str, err: OSError) -> OutputError:
    return OutputError(f"{path}: no space left while writing ({os.strerror(err.errno)}); free space and rerun the "
                       f"same command: finished blocks are kept and the run resumes")  # fmt: skip


def prepare(marker_dir: str, target: str, key: dict, overwrite: bool) -> set[int]:
    """Check what is at `target` against `key`: refuse, remove (overwrite), or resume. → finished block indices."""
    job_path = os.path.join(marker_dir, "job.json")
    complete = os.path.isfile(os.path.join(marker_dir, "complete.json")) or (
        os.path.isfile(target) and not os.path.isdir(marker_dir)
    )
    if not os.path.exists(target) and not os.path.exists(marker_dir):
        return set()
    if overwrite:
        for path in {target, marker_dir}:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
        return set()
    if complete:
        raise OutputError(f"{target} exists (a finished segmentation); pass --overwrite to replace it")
    if not os.path.isfile(job_path):
        raise OutputError(f"{target} exists and is not a cemjax segmentation; pass --overwrite to replace it")
    with open(job_path) as f:
        old = json.load(f)
    if old != key:
        changed = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        raise OutputError(f"{target} is an unfinished segmentation of another {'/'.join(changed)}; pass --overwrite "
                          f"to start again")  # fmt: skip
    blocks = os.path.join(marker_dir, "blocks")
    return {int(n) for n in os.listdir(blocks) if n.isdigit()} if os.path.isdir(blocks) else set()


def _mark(marker_dir: str, index: int) -> None:
    with open(os.path.join(marker_dir, "blocks", str(index)), "w"):
        pass


def pyramid_levels(shape_yx: tuple[int, int], smallest: int = 256, most: int = 6) -> int:
    """Resolution levels: halve y, x until the larger side is ≤ `smallest`."""
    n, side = 1, max(shape_yx)
    while side > smallest and n < most:
        side, n = -(-side // 2), n + 1
    return n


class ZarrOutput:
    """The OME-Zarr store of one segmentation (see the module docstring)."""

    def __init__(self, path: str, *, shape, ndim: int, outputs: int, chunks, probabilities: bool, ngff: str = "0.4"):
        if ngff not in ("0.4", "0.5"):
            raise ValueError(f"ngff {ngff!r}: use 0.4 (zarr v2) or 0.5 (zarr v3)")
        self.path, self.shape, self.ndim, self.outputs = path, tuple(shape), ndim, outputs
        self.chunks, self.probabilities, self.ngff = tuple(chunks), probabilities, ngff
        self.markers = os.path.join(path, MARKERS)
        self.zarr_format = 2 if ngff == "0.4" else 3

    def _space(self, shape3):
        return tuple(shape3[1:]) if self.ndim == 2 else tuple(shape3)

    def create(self, key: dict) -> None:
        try:
            root = zarr.open_group(self.path, mode="w", zarr_format=self.zarr_format)
            seg = root.create_group("labels").create_group("segmentation")
            seg.create_array("0", shape=self._space(self.shape), chunks=self._space(self.chunks), dtype="uint8",
                             fill_value=0)  # fmt: skip
            if self.probabilities:
                root.create_group("probabilities").create_array(
                    "0", shape=(self.outputs, *self._space(self.shape)), chunks=(1, *self._space(self.chunks)),
                    dtype="uint8", fill_value=0,
                )  # fmt: skip
            os.makedirs(os.path.join(self.markers, "blocks"), exist_ok=True)
            write_json(os.path.join(self.markers, "job.json"), key)
        except OSError as e:
            raise (no_space(self.path, e) if e.errno in NO_SPACE else e) from e

    def open(self) -> None:
        root = zarr.open_group(self.path, mode="r+")
        self._labels = root["labels/segmentation/0"]
        self._probs = root["probabilities/0"] if self.probabilities else None

    def write(self, block: Block, labels: np.ndarray, probs: np.ndarray | None) -> None:
        owned = block.owned[1:] if self.ndim == 2 else block.owned
        try:
            self._labels[owned] = labels[0] if self.ndim == 2 else labels
            if probs is not None:
                self._probs[(slice(None), *owned)] = probs[:, 0] if self.ndim == 2 else probs
        except OSError as e:
            raise (no_space(self.path, e) if e.errno in NO_SPACE else e) from e

    def mark_done(self, index: int) -> None:
        _mark(self.markers, index)

    def finish(self, classes, spacing, extra_labels=()) -> None:
        """Pyramids, NGFF metadata, then the complete marker (last, atomically)."""
        try:
            root = zarr.open_group(self.path, mode="r+")
            names = ("segmentation", *extra_labels)
            for name in names:
                group = root[f"labels/{name}"]
                levels = build_pyramid(group)
                self._attrs(group, self._multiscales(name, spacing, levels), self._image_label(name, classes))
            if self.probabilities:
                group = root["probabilities"]
                levels = build_pyramid(group)
                self._attrs(group, self._multiscales("probabilities", spacing, levels, channel=True), None)
            self._attrs(root["labels"], None, None, {"labels": list(names)})
            write_json(os.path.join(self.markers, "complete.json"), {"complete": True, "labels": list(names)})
        except OSError as e:
            raise (no_space(self.path, e) if e.errno in NO_SPACE else e) from e

    def _multiscales(self, name, spacing, levels: int, channel: bool = False) -> dict:
        axes = [{"name": n, "type": "space", "unit": "nanometer"} for n in ("z", "y", "x")[3 - self.ndim :]]
        scale0 = list(spacing[3 - self.ndim :])
        datasets = []
        for level in range(levels):
            scale = scale0[:-2] + [s * 2**level for s in scale0[-2:]]
            datasets.append({"path": str(level), "coordinateTransformations": [
                {"type": "scale", "scale": ([1.0] if channel else []) + scale}]})  # fmt: skip
        axes = ([{"name": "c", "type": "channel"}] if channel else []) + axes
        out = {"name": name, "axes": axes, "datasets": datasets}
        return {"version": "0.4", **out} if self.ngff == "0.4" else out

    def _image_label(self, name, classes) -> dict:
        if name != "segmentation":
            return {"source": {"image": "../../"}}
        rgb = label_colours(len(classes))
        colours = [{"label-value": k, "rgba": [*map(int, rgb[k]), 255]} for k in range(1, len(classes))]
        properties = [{"label-value": k, "class": c} for k, c in enumerate(classes)]
        return {"colors": colours, "properties": properties, "source": {"image": "../../"}}

    def _attrs(self, group, multiscales, image_label, plain=None) -> None:
        attrs = dict(plain or {})
        if multiscales is not None:
            attrs["multiscales"] = [multiscales]
        if image_label is not None:
            attrs["image-label"] = ({"version": "0.4"} | image_label) if self.ngff == "0.4" else image_label
        if self.ngff == "0.5":
            attrs = {"ome": {"version": "0.5", **attrs}}
        group.attrs.update(attrs)


def build_pyramid(group, smallest: int = 256) -> int:
    """Levels 1.. of `group/0` (every second voxel in y, x: labels stay labels), written block by block."""
    base = group["0"]
    levels = pyramid_levels(base.shape[-2:], smallest)
    for level in range(1, levels):
        prev = group[str(level - 1)]
        shape = (*prev.shape[:-2], -(-prev.shape[-2] // 2), -(-prev.shape[-1] // 2))
        chunks = tuple(min(c, s) for c, s in zip(base.chunks, shape, strict=True))
        if str(level) in group:
            del group[str(level)]
        out = group.create_array(str(level), shape=shape, chunks=chunks, dtype=base.dtype, fill_value=0)
        lead = prev.shape[:-2]
        step = 2048
        for index in np.ndindex(*[-(-n // c) for n, c in zip(lead, prev.chunks[: len(lead)], strict=True)]):
            sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, prev.chunks[: len(lead)], strict=True))
            for y0 in range(0, prev.shape[-2], 2 * step):
                for x0 in range(0, prev.shape[-1], 2 * step):
                    part = prev[(*sl, slice(y0, y0 + 2 * step, 2), slice(x0, x0 + 2 * step, 2))]
                    where = (slice(y0 // 2, y0 // 2 + part.shape[-2]), slice(x0 // 2, x0 // 2 + part.shape[-1]))
                    out[(*sl, *where)] = part
    return levels


class TifOutput:
    """A (multi-page) TIFF written in place through memory maps of one block's z-range at a time."""

    def __init__(self, path: str, *, shape, ndim: int, outputs: int, probabilities: bool, spacing):
        self.path, self.shape, self.ndim, self.outputs = path, tuple(shape), ndim, outputs
        self.probabilities, self.spacing = probabilities, spacing
        folder, name = os.path.split(os.path.abspath(path))
        self.markers = os.path.join(folder, f".{name}{MARKERS}")
        self.partial = os.path.join(self.markers, "labels.tif")
        self.partial_probs = os.path.join(self.markers, "probabilities.tif")
        self.probs_path = probabilities_path(path)

    def _create_file(self, path: str, shape, axes: str) -> None:
        meta = {"axes": axes}
        kwargs = {}
        if self.spacing:
            meta |= {"unit": "nm", "spacing": self.spacing[0]}
            kwargs["resolution"] = (1.0 / self.spacing[2], 1.0 / self.spacing[1])
        mm = tifffile.memmap(path, shape=shape, dtype=np.uint8, imagej=True, metadata=meta, **kwargs)
        mm.flush()
        del mm

    def create(self, key: dict) -> None:
        try:
            os.makedirs(os.path.join(self.markers, "blocks"), exist_ok=True)
            z, y, x = self.shape
            self._create_file(self.partial, (z, y, x), "ZYX")
            if self.probabilities:
                self._create_file(self.partial_probs, (z, self.outputs, y, x), "ZCYX")
            write_json(os.path.join(self.markers, "job.json"), key)
        except OSError as e:
            raise (no_space(self.path, e) if e.errno in NO_SPACE else e) from e

    def open(self) -> None:
        self._offset = _data_offset(self.partial)
        self._probs_offset = _data_offset(self.partial_probs) if self.probabilities else None

    def write(self, block: Block, labels: np.ndarray, probs: np.ndarray | None) -> None:
        z, y, x = block.owned
        plane = self.shape[1] * self.shape[2]
        try:
            mm = np.memmap(self.partial, np.uint8, "r+", self._offset + z.start * plane,
                           (z.stop - z.start, *self.shape[1:]))  # fmt: skip
            mm[:, y, x] = labels
            mm.flush()
            del mm
            if probs is not None:
                c = self.outputs
                mm = np.memmap(self.partial_probs, np.uint8, "r+", self._probs_offset + z.start * plane * c,
                               (z.stop - z.start, c, *self.shape[1:]))  # fmt: skip
                mm[:, :, y, x] = np.moveaxis(probs, 0, 1)
                mm.flush()
                del mm
        except OSError as e:
            raise (no_space(self.path, e) if e.errno in NO_SPACE else e) from e

    def mark_done(self, index: int) -> None:
        _mark(self.markers, index)

    def finish(self, classes, spacing, extra_labels=()) -> None:
        del classes, spacing, extra_labels
        if self.probabilities:
            os.replace(self.partial_probs, self.probs_path)
        os.replace(self.partial, self.path)  # the labels file appears last: its presence means complete
        shutil.rmtree(self.markers, ignore_errors=True)


def probabilities_path(path: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}.probabilities{ext}"


def _data_offset(path: str) -> int:
    with tifffile.TiffFile(path) as tif:
        offset = tif.series[0].dataoffset
    if offset is None:
        raise OutputError(f"{path}: not a contiguous TIFF (cannot write it block by block)")
    return offset
