"""Find the source datasets in the inputs and plan the work (runs on the driver; reads headers only).

Rules: a 3D volume is a source of its own, named after the file's stem; 2D images are grouped by the folder
that holds them (source = folder name; a 2D image passed directly as a file is its own source). An input
given as `NAME=PATH` names its source(s): NAME for its images (NAME_<subfolder> for those in subfolders) and
for a single volume, NAME_<stem> for volumes in a named folder. Source names are sanitised ('-LOC-' and path
separators removed) and made unique by a numeric suffix, with a note. Each unreadable input becomes a
`Rejected` line instead of stopping the run. Every left-out cross-section gets a note saying why.

Deduplication groups (docs/method.md §1.3–1.4): a volume's patches are deduplicated together; 2D images
follow the rule set — "paper" (v0.1) deduplicates each image's patches among themselves, "v2" does not
deduplicate 2D patches.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from cemjax.curate.cross_sections import RULES, Unit, axes_and_note, plan_units
from cemjax.curate.guards import bad_spacing
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
    dedup_group: str = ""  # patches sharing a group are deduplicated together; "" = the whole source


@dataclass
class Plan:
    """Sources → files → units, plus everything rejected while planning."""

    files: dict[str, list[FileInfo]] = field(default_factory=dict)
    units: dict[str, list[tuple[FileInfo, Unit]]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # per source: axes left out, renames, …
    skipped: list[str] = field(default_factory=list)  # folder entries not visited twice (links), with why


def _sanitise(name: str) -> str:
    name = name.replace("-LOC-", "_LOC_")
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", name).strip("._") or "source"


def _stem(path: str) -> str:
    base = os.path.basename(path.rstrip("/"))
    for ext in sorted(SUFFIXES, key=len, reverse=True):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return os.path.splitext(base)[0]


def display(path: str) -> str:
    """`path` printable and writable as UTF-8 (bytes that are not UTF-8 shown as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _entry_problem(p: str, st: os.stat_result) -> str:
    """Why a folder entry is not even looked into ("" for a regular file or folder)."""
    try:
        os.path.basename(p).encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename it)"
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return ""
    kind = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device"}.get(stat.S_IFMT(st.st_mode), "not a regular file")  # fmt: skip
    return f"{kind}, not a regular file; not opened"


def _walk(root: str, rejected: list[Rejected], exclude: str = "", seen: set | None = None,
          notes: list[str] | None = None) -> list[str]:  # fmt: skip
    """Candidate image paths under folder `root` (zarr folders are one file); empty folders are rejected.

    Symbolic links are followed, but a real folder (or file) is visited once: a second way to it, such as a
    link to an ancestor, is skipped with a note. Non-regular files (FIFOs, sockets, devices) and names that
    are not UTF-8 are rejected without being opened."""
    seen = set() if seen is None else seen
    notes = [] if notes is None else notes
    st = os.stat(root)
    seen.add((st.st_dev, st.st_ino))
    found = []
    entries = sorted(os.listdir(root))
    if not any(e not in SKIP_NAMES for e in entries):
        rejected.append(Rejected(display(root), "empty folder"))
        return found
    for e in entries:
        p = os.path.join(root, e)
        if e in SKIP_NAMES or e.endswith(".json") and os.path.exists(p[:-5]):
            continue  # sidecars are read with their image
        if exclude and os.path.abspath(p) == exclude:
            continue  # the run's own output folder inside an input folder
        try:
            st = os.stat(p)
        except OSError:
            found.append(p)  # a broken link or unreadable entry: open_em says why
            continue
        problem = _entry_problem(p, st)
        if problem:
            rejected.append(Rejected(display(p), problem))
            continue
        if (st.st_dev, st.st_ino) in seen:
            real = display(os.path.realpath(p))
            notes.append(f"skipped {display(p)}: it leads to {real}, already visited (a link back into the inputs)")
            continue
        seen.add((st.st_dev, st.st_ino))
        if stat.S_ISDIR(st.st_mode) and not e.lower().endswith(".zarr"):
            found += _walk(p, rejected, exclude, seen, notes)
        else:
            found.append(p)
    return found


NO_DEDUP = "none"  # the dedup group of patches that are not deduplicated (2D images under the v2 rules)


def split_name(inp: str) -> tuple[str, str]:
    """`"NAME=PATH"` → (NAME, PATH); a plain path → ("", path). A path that exists as written is never split."""
    name, sep, path = inp.partition("=")
    if sep and name and not os.path.exists(inp) and re.fullmatch(r"[A-Za-z0-9._+-]+", name):
        return name, path
    return "", inp


def _base_names(path: str, top: str, group: str, name: str, is_volume: bool) -> str:
    """The (unsanitised) source name of a file found under input `top` (named `name` or not)."""
    if not name:
        return _stem(path) if is_volume else (_stem(group) if group == path else os.path.basename(group))
    if is_volume:
        return name if path == top else f"{name}_{_stem(path)}"
    rel = os.path.relpath(group, top) if group != path else "."
    return name if rel == "." else f"{name}_{rel}"


def discover(
    inputs: list[str],
    spacing: tuple[float, float, float] | None = None,
    rules: str = "paper",
    budget: int = 64 << 20,
    max_planes: int = 64,
    exclude: str | None = None,
) -> Plan:
    """Probe every input (header only) and plan per-source units of patching work.

    inputs: files and folders, each optionally `NAME=PATH`. spacing: (sz, sy, sx) nm for volumes whose files
    carry none (sidecar JSON and metadata take priority). rules: "paper" or "v2" (`RULES`). exclude: a folder
    never to descend into (the output folder).
    """
    if rules not in RULES:
        raise ValueError(f"curation rules {rules!r}: use one of {', '.join(RULES)}")
    rule = RULES[rules]
    plan = Plan()
    raw: list[tuple[str, str, str, str]] = []  # (path, group folder or path, input, its name)
    seen: set = set()
    for inp in inputs:
        name, inp = split_name(inp)
        inp = os.path.abspath(inp)
        if os.path.isdir(inp) and not inp.lower().endswith(".zarr"):
            found = _walk(inp, plan.rejected, os.path.abspath(exclude or ""), seen, plan.skipped)
            raw += [(p, os.path.dirname(p), inp, name) for p in found]
        else:
            raw.append((inp, inp, inp, name))
    grouped: dict[str, list] = {}
    for path, group, top, name in raw:
        try:
            with open_em(path) as em:
                meta = (tuple(em.shape), str(em.dtype), em.spacing)
        except EMReadError as e:
            plan.rejected.append(Rejected(display(path), e.reason))
            continue
        why = bad_spacing(meta[2])
        if why:
            side = path.partition("::")[0] + ".json"
            where = f"the sidecar {os.path.basename(side)}" if os.path.exists(side) else "the file's metadata"
            plan.rejected.append(Rejected(path, f"{why} in {where}; fix it or give --spacing"))
            continue
        is_volume = len(meta[0]) == 3
        key = (path, "") if is_volume else (group, name)
        grouped.setdefault(key, [_base_names(path, top, group, name, is_volume), []])[1].append((path, meta))
    used: set[str] = set()
    for (_, _), (base, items) in sorted(grouped.items(), key=lambda kv: kv[0]):
        name, k = _sanitise(base), 1
        while name in used:
            k += 1
            name = f"{_sanitise(base)}_{k}"
        used.add(name)
        notes = [] if name == _sanitise(base) else [f"named {name}: {_sanitise(base)!r} was taken (name sources "
                                                     f"with NAME=PATH)"]  # fmt: skip
        infos, units = [], []
        for i, (p, (shape, dtype, sp)) in enumerate(sorted(items)):
            sp = sp if sp is not None else (spacing if len(shape) == 3 else None)
            video = rule["video_xy_only"] and "video" in _stem(p).lower()
            axes, note = axes_and_note(len(shape), sp, rule["anisotropy"], video)
            if note:
                notes.append(f"{os.path.basename(p)}: {note}")
            group = "" if len(shape) == 3 else (p if rule["dedup_2d"] == "per_image" else NO_DEDUP)
            info = FileInfo(p, name, i, shape, dtype, sp, axes, group)
            infos.append(info)
            with open_em(info.path, spacing=info.spacing) as em:
                units += [(info, u) for u in plan_units(name, em, axes, budget, max_planes)]
        plan.files[name], plan.units[name], plan.notes[name] = infos, units, notes
    return plan
