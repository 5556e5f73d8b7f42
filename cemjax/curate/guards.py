"""Checks a curation run makes before any work: flags, the classifier folder, the output folder (not inside an
input, not in use by another run), and the identity of what produced each source's committed results.

A committed source is reused only when its key still matches: the files' (path, size, mtime_ns) and the flags
that shape its patches. Otherwise the source is curated again and `stale_reason` says why in one line.
"""

from __future__ import annotations

import fcntl
import glob
import json
import math
import os

from cemjax.common.errors import ConfigError, InputError

LOCK_NAME = ".curate.lock"
KEY_VERSION = 1


def check_spacing(spacing) -> tuple[float, float, float] | None:
    """--spacing as (sz, sy, sx) nm; ConfigError unless three positive finite numbers."""
    if spacing is None:
        return None
    try:
        values = tuple(float(v) for v in (spacing.split(",") if isinstance(spacing, str) else spacing))
    except (TypeError, ValueError):
        raise ConfigError(f"--spacing {spacing!r}: give three numbers sz,sy,sx in nm, e.g. 30,8,8") from None
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        shown = ",".join(f"{v:g}" for v in values)
        raise ConfigError(f"--spacing {shown}: need three positive finite numbers sz,sy,sx in nm, e.g. 30,8,8")
    return values


def bad_spacing(spacing) -> str:
    """ "" when a file's spacing is usable (or absent), else why not (one line)."""
    if spacing is None:
        return ""
    try:
        ok = len(spacing) == 3 and all(math.isfinite(float(v)) and float(v) > 0 for v in spacing)
    except (TypeError, ValueError):
        ok = False
    return "" if ok else f"bad voxel spacing {tuple(spacing)} (need three positive finite values in nm)"


def check_model_dir(model_dir: str | None) -> None:
    """The quality classifier folder holds a readable quality.json, spec.json and state/ (InputError if not)."""
    if not model_dir:
        return
    where = f"--model-dir {model_dir}"
    if not os.path.isdir(model_dir):
        raise InputError(f"{where}: no such folder (train one with cemjax-train-quality, or leave --model-dir out)")
    try:
        with open(os.path.join(model_dir, "quality.json")) as f:
            meta = json.load(f)
        for k in ("threshold", "size", "mean", "std"):
            float(meta[k])
    except (OSError, ValueError, KeyError, TypeError) as err:
        why = "no quality.json" if isinstance(err, FileNotFoundError) else f"unreadable quality.json ({err!r})"
        raise InputError(f"{where}: not a quality classifier: {why}; see cemjax-train-quality") from None
    missing = [n for n in ("spec.json", "state") if not os.path.exists(os.path.join(model_dir, n))]
    if missing:
        raise InputError(f"{where}: not a quality classifier: missing {', '.join(missing)}; see cemjax-train-quality")


def check_output(out: str, inputs: list[str]) -> None:
    """Refuse an output folder inside (or equal to) an input folder: the run would curate its own results."""
    real_out = os.path.realpath(out)
    for inp in inputs:
        real_in = os.path.realpath(inp)
        if os.path.isdir(real_in) and (real_out == real_in or real_out.startswith(real_in.rstrip(os.sep) + os.sep)):
            raise ConfigError(f"--output {out} is inside --input {inp}; choose an output folder outside the inputs")


def lock_output(out: str) -> int:
    """Hold an exclusive lock on <out>/.curate.lock for this process's life; refuse at once if another run has
    it. A lock file left by a process that died holds no lock (the kernel drops it), so it never blocks."""
    path = os.path.join(out, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        why = f"{path} is held by another curation run (pid {holder}); wait for it or use another --output"
        raise InputError(why) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock_output(fd: int) -> None:
    os.close(fd)


def remove_temporaries(out: str) -> None:
    """Delete the hidden temporaries a killed run left (`.<name>.<random>.tmp<suffix>`, see common.files)."""
    for path in glob.glob(os.path.join(glob.escape(out), "**", ".*.tmp*"), recursive=True):
        if os.path.isfile(path):
            os.unlink(path)


def _identity(path: str) -> list:
    try:
        st = os.stat(path.partition("::")[0])
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, None, None]


def _folder_identity(folder: str) -> list:
    found = []
    for root, _, names in os.walk(folder):
        for n in sorted(names):
            rel = os.path.relpath(os.path.join(root, n), folder)
            found.append([rel, *_identity(os.path.join(root, n))[1:]])
    return sorted(found)


def source_key(paths: list[str], params: dict) -> dict:
    """What a source's results depend on: its files (with sidecars) and the flags that shape its patches."""
    files = []
    for p in sorted(paths):
        files.append(_identity(p))
        side = p.partition("::")[0].rstrip("/") + ".json"
        if os.path.exists(side):
            files.append(_identity(side))
    return {"version": KEY_VERSION, "files": files, "params": params}


def run_params(cfg) -> dict:
    """The flags of `cfg` (a CurateConfig) that change what a source yields."""
    model = os.path.abspath(cfg.model_dir) if cfg.model_dir else None
    return {
        "seed": cfg.seed, "max_distance": cfg.max_distance, "rules": cfg.rules, "intensity": cfg.intensity,
        "spacing": list(cfg.spacing) if cfg.spacing else None, "model_dir": model,
        "model_files": _folder_identity(model) if model else None, "threshold": cfg.threshold,
    }  # fmt: skip


def stale_reason(old: dict | None, new: dict) -> str:
    """ "" when `old` (the key stored with the results) equals `new`; else why, in a few words."""
    if old == new:
        return ""
    if not old or old.get("version") != new["version"]:
        return "its results carry no record of what produced them"
    changed = [k for k in new["params"] if old.get("params", {}).get(k) != new["params"][k]]
    changed = [k for k in changed if k != "model_files" or "model_dir" not in changed]
    why = []
    if changed:
        names = ["the classifier's files" if k == "model_files" else "--" + k.replace("_", "-") for k in changed]
        why.append(f"{', '.join(names)} changed")
    before = {f[0]: f[1:] for f in old.get("files", [])}
    now = {f[0]: f[1:] for f in new["files"]}
    for count, what in (
        (len(now.keys() - before.keys()), "added"),
        (len(before.keys() - now.keys()), "removed"),
        (sum(1 for p in now.keys() & before.keys() if now[p] != before[p]), "changed"),
    ):
        if count:
            why.append(f"{count} file{'s' if count > 1 else ''} {what}")
    return ("; ".join(why) or "its record differs") + " since the last run"
