"""Which folder a TFDS build was made from: a record beside the build, checked before building again.

`<data_dir>/<name>/.cemjax_source.json` holds the manual_dir and a fingerprint of its listing (relative names,
sizes, mtime_ns of every file). Building into a data_dir that holds `name` from another folder or other content
is refused (it would mix two datasets under one name) unless `overwrite`, which removes the old build first. A
build without a record (TFDS's own `tfds build`) is adopted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from cemjax.common.errors import InputError
from cemjax.common.files import write_json

RECORD = ".cemjax_source.json"


def fingerprint(manual_dir: Path) -> dict:
    """{"folder", "files", "sha256"} of the listing of `manual_dir` (files only, symbolic links followed; hidden
    names such as a curation output's `.parts/` and `.curate.lock` left out: they change without new patches)."""
    listing = []
    for root, dirs, names in os.walk(manual_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(n for n in names if not n.startswith(".")):
            p = os.path.join(root, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            listing.append(f"{os.path.relpath(p, manual_dir)}\t{st.st_size}\t{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(listing).encode("utf-8", "surrogateescape")).hexdigest()
    return {"folder": os.fspath(manual_dir), "files": len(listing), "sha256": digest}


def _built(name_dir: Path) -> bool:
    return name_dir.is_dir() and any(name_dir.glob("*/dataset_info.json"))


def check_source(name: str, manual_dir: Path, data_dir: Path, overwrite: bool = False) -> dict:
    """Refuse (InputError, one line) a build of `name` from `manual_dir` into a data_dir that holds `name` built
    from another folder or content; with `overwrite`, remove that build. Returns the new fingerprint."""
    new = fingerprint(manual_dir)
    name_dir = data_dir / name
    if not _built(name_dir):
        return new
    try:
        old = json.loads((name_dir / RECORD).read_text())
    except (OSError, ValueError):
        return new  # no record: a build by TFDS's own CLI, adopted
    if old.get("sha256") == new["sha256"] and old.get("folder") == new["folder"]:
        return new
    if overwrite:
        shutil.rmtree(name_dir)
        return new
    if old.get("folder") == new["folder"]:
        what = f"{new['folder']} as it was then ({old.get('files')} files; {new['files']} now, or changed since)"
    else:
        what = f"{old.get('folder')}, not {new['folder']}"
    raise InputError(
        f"{data_dir} already holds {name} built from {what}; use --overwrite to rebuild it or another --data_dir"
    )


def record_source(name: str, data_dir: Path, fp: dict) -> None:
    if (data_dir / name).is_dir():
        write_json(data_dir / name / RECORD, fp)
