"""Find the source datasets in the inputs and plan the work (runs on the driver; reads headers only).

Rules: a 3D volume is a source of its own, named after the file's stem; 2D images are grouped by the folder
that holds them (source = folder name; a 2D image passed directly as a file is its own source). Source names
are sanitised ('-LOC-' and path separators removed) and made unique by a numeric suffix. Each unreadable
input becomes a `Rejected` line instead of stopping the run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from cemjax.curate.cross_sections import Unit, plan_units, section_axes
from cemjax.curate.patches import PATCH, grid
from cemjax.io.formats import SUFFIXES, EMReadError, open_em

SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Rejected:
    """One input that was skipped: path, one-line reason, and the source it would have fed ('' if none)."""

    path: str
    reason: str
    source: str = ""

    def line(self) -> str:
        return f"rejected {self.path}: {self.reason}"


@dataclass
class FileInfo:
    """Header facts of one input file. shape: (H, W) or (Z, Y, X); spacing (sz, sy, sx) nm or None."""

    path: str
    source: str
    index: int  # position of a 2D image within its source (the patch name's slice), 0 for volumes
    shape: tuple[int, ...]
    dtype: str
    spacing: tuple[float, float, float] | None
    axes: tuple[str, ...]


@dataclass
class Plan:
    """Sources → files → units, plus everything rejected while planning."""

    files: dict[str, list[FileInfo]] = field(default_factory=dict)
    units: dict[str, list[tuple[FileInfo, Unit]]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)


def _sanitise(name: str) -> str:
    name = name.replace("-LOC-", "_LOC_")
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", name).strip("._") or "source"


def _stem(path: str) -> str:
    base = os.path.basename(path.rstrip("/"))
    for ext in sorted(SUFFIXES, key=len, reverse=True):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return os.path.splitext(base)[0]


def _n_patches(info: FileInfo, axes: tuple[str, ...] | None = None) -> int:
    """Number of patches the file yields along `axes` (default: its planned axes)."""
    if len(info.shape) == 2:
        return len(grid(info.shape[0])) * len(grid(info.shape[1]))
    z, y, x = info.shape
    dims = {"xy": (z, y, x), "xz": (y, z, x), "yz": (x, z, y)}
    return sum(n * len(grid(h)) * len(grid(w)) for n, h, w in (dims[a] for a in axes or info.axes))


def _walk(root: str, rejected: list[Rejected], exclude: str = "") -> list[str]:
    """Candidate image paths under folder `root` (zarr folders are one file); empty folders are rejected."""
    found = []
    entries = sorted(os.listdir(root))
    if not any(e not in SKIP_NAMES for e in entries):
        rejected.append(Rejected(root, "empty folder"))
        return found
    for e in entries:
        p = os.path.join(root, e)
        if e in SKIP_NAMES or e.endswith(".json") and os.path.exists(p[:-5]):
            continue  # sidecars are read with their image
        if exclude and os.path.abspath(p) == exclude:
            continue  # the run's own output folder inside an input folder
        if os.path.isdir(p) and not e.lower().endswith(".zarr"):
            found += _walk(p, rejected, exclude)
        else:
            found.append(p)
    return found


def discover(
    inputs: list[str],
    spacing: tuple[float, float, float] | None = None,
    anisotropy_threshold: float = 0.2,
    budget: int = 64 << 20,
    max_planes: int = 64,
    exclude: str | None = None,
) -> Plan:
    """Probe every input (header only) and plan per-source units of patching work.

    spacing: (sz, sy, sx) nm for volumes whose files carry none (sidecar JSON and metadata take priority).
    exclude: a folder never to descend into (the output folder).
    """
    plan = Plan()
    raw: list[tuple[str, str]] = []  # (path, group folder or '' for a direct file)
    for inp in inputs:
        inp = os.path.abspath(inp)
        if os.path.isdir(inp) and not inp.lower().endswith(".zarr"):
            raw += [(p, os.path.dirname(p)) for p in _walk(inp, plan.rejected, os.path.abspath(exclude or ""))]
        else:
            raw.append((inp, ""))
    volumes, images = [], {}
    for path, group in raw:
        try:
            with open_em(path) as em:
                meta = (tuple(em.shape), str(em.dtype), em.spacing)
        except EMReadError as e:
            plan.rejected.append(Rejected(path, e.reason))
            continue
        if len(meta[0]) == 3:
            volumes.append((path, _stem(path), meta))
        else:
            images.setdefault(group or path, []).append((path, meta))
    named: list[tuple[str, list]] = [(stem, [(p, meta)]) for p, stem, meta in volumes]
    for group, items in sorted(images.items()):
        named.append((_stem(group) if len(items) == 1 and items[0][0] == group else os.path.basename(group), items))
    used: set[str] = set()
    for base, items in named:
        name, k = _sanitise(base), 1
        while name in used:
            k += 1
            name = f"{_sanitise(base)}_{k}"
        used.add(name)
        infos = []
        for i, (p, (shape, dtype, sp)) in enumerate(sorted(items)):
            sp = sp if sp is not None else (spacing if len(shape) == 3 else None)
            infos.append(FileInfo(p, name, i, shape, dtype, sp, section_axes(len(shape), sp, anisotropy_threshold)))
        units = []
        for info in list(infos):
            if _n_patches(info) == 0:
                plan.rejected.append(Rejected(info.path, f"too small for any {PATCH}px patch {info.shape}", name))
                infos.remove(info)
                continue
            with open_em(info.path, spacing=info.spacing) as em:
                axes = tuple(a for a in info.axes if _n_patches(info, (a,)))
                units += [(info, u) for u in plan_units(name, em, axes, budget, max_planes)]
        if infos:
            plan.files[name], plan.units[name] = infos, units
    return plan
