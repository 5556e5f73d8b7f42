"""Atomic file writes: a temporary sibling, moved into place only when the write succeeded.

Readers never see a partial file: a kill mid-write leaves the old file (or none) and a hidden temporary that
the next write replaces. Files get the permissions `open()` would give them (umask applied).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary sibling path with the same suffix; on success it replaces `path` (a folder written at
    the temporary path replaces a folder at `path`). On failure the temporary is removed and `path` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    os.unlink(tmp)  # the writer creates it (a file, or a folder for zarr stores)
    try:
        yield tmp
        if os.path.isdir(tmp) and path.is_dir():
            shutil.rmtree(path)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, write_fn: Callable[[str], object]) -> Path:
    """Call `write_fn(tmp_path)`, then move the result onto `path`. Returns `path`."""
    with atomic_path(path) as tmp:
        write_fn(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent) + "\n")
