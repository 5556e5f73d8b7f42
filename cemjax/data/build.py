"""Build the TFDS datasets once, readable both ways: tfrecord (for `tfds.load`, needs TensorFlow) and
array_record beside it (for `tfds.data_source` / grain, no TensorFlow).

TFDS refuses a second build of one builder into the same data_dir with another file format, and cannot
convert array_record → tfrecord; so we build tfrecord and convert it to array_record in place. The builders
list ``alternative_file_formats`` in their DatasetInfo, which is what lets a fresh process open either.

    python -m cemjax.data.build cem500k --manual_dir PATCHES --data_dir ~/tensorflow_datasets
    python -m cemjax.data.build cem_benchmarks/lucchi_pp --manual_dir BENCHMARKS --data_dir ~/tensorflow_datasets
    python -m cemjax.data.build cem_benchmarks/guay cem_benchmarks/cremi --manual_dir BENCHMARKS  # one process
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import subprocess
import sys
from pathlib import Path

import tensorflow_datasets as tfds

import tfds_cem500k  # noqa: F401  (the import registers the cem500k and cem_benchmarks builders with TFDS)
from cemjax.common.errors import guarded
from cemjax.data.build_source import check_source, record_source

RESULT_PREFIX = "built: "  # the child's stdout line naming each version folder
CHILD_ENV = "CEMJAX_BUILD_CHILD"  # set in the build's child process
SHOWN = ("[cem", "skipping", "skipped")  # the child's stderr lines worth passing on: progress and skipped files


def build(
    name: str, manual_dir: str | os.PathLike, data_dir: str | os.PathLike, *, workers: int = 1, isolated: bool = True,
    overwrite: bool = False,
) -> Path:  # fmt: skip
    """Build ``name`` (``cem500k`` or ``cem_benchmarks/<config>``) into data_dir; returns the version folder.

    ``isolated`` (default) runs the build in a child process: writing tfrecords loads TensorFlow, and TensorFlow
    and PyTorch/Triton in one process can crash (seen here: a segfault importing triton after a build), so the
    caller's process never loads TensorFlow."""
    return build_many([name], manual_dir, data_dir, workers=workers, isolated=isolated, overwrite=overwrite)[0]


def build_many(
    names: list[str], manual_dir: str | os.PathLike, data_dir: str | os.PathLike, *, workers: int = 1,
    isolated: bool = True, overwrite: bool = False,
) -> list[Path]:  # fmt: skip
    """Build several datasets from one manual dir in ONE child process (one TensorFlow start-up for all);
    returns their version folders in order. See :func:`build`. A data_dir that holds one of them built from
    another folder or content is refused unless `overwrite` (`cemjax.data.build_source`)."""
    # absolute paths: TFDS's array_record conversion finds no shards under a relative data_dir (seen here)
    manual_dir = Path(manual_dir).expanduser().absolute()
    data_dir = Path(data_dir).expanduser().absolute()
    if not manual_dir.is_dir() or not any(manual_dir.iterdir()):
        raise FileNotFoundError(
            f"manual dir {manual_dir} does not exist or is empty; put the data there and run: tfds build {names[0]} "
            f"--imports tfds_cem500k --manual_dir {manual_dir}"
        )
    sources = {name: check_source(name, manual_dir, data_dir, overwrite) for name in names}
    if isolated:
        built = _build_in_child(names, manual_dir, data_dir)
    else:
        built = [_build_here(name, manual_dir, data_dir, workers) for name in names]
    for name in names:
        record_source(name, data_dir, sources[name])
    return built


def _build_in_child(names: list[str], manual_dir: Path, data_dir: Path) -> list[Path]:
    """Run the build in a child process, passing its progress lines through to stderr as they come."""
    cmd = [sys.executable, "-m", "cemjax.data.build", *names, f"--manual_dir={manual_dir}", f"--data_dir={data_dir}"]
    tail: collections.deque[str] = collections.deque(maxlen=60)
    env = {**os.environ, CHILD_ENV: "1"}  # the child raises (its last line names the error), never prints `error:`
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as child:
        for line in child.stderr:
            tail.append(line)
            if any(mark in line for mark in SHOWN):
                print(line.rstrip("\n"), file=sys.stderr, flush=True)
        stdout = child.stdout.read()
    if child.returncode != 0:
        last = [line for line in tail if line.strip()][-1:] or [""]
        kind, _, message = last[0].strip().partition(": ")
        error = _known_error(kind)
        if error is not None:
            raise error(message)  # the builder's own one-line message (names the file and the fix)
        raise RuntimeError(f"building {' '.join(names)} failed:\n{''.join(tail)[-3000:]}")
    return [Path(line[len(RESULT_PREFIX) :]) for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]


def _build_here(name: str, manual_dir: Path, data_dir: str | os.PathLike, workers: int) -> Path:
    tfds.disable_progress_bar()  # the builders print their own progress lines
    builder = tfds.builder(name, data_dir=os.fspath(Path(data_dir).expanduser()), file_format="tfrecord")
    version_dir = Path(builder.data_dir)
    if (version_dir / "dataset_info.json").exists() and _has_array_record(version_dir):
        return version_dir
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
    if not _has_array_record(version_dir):
        # imported here, in the build process only: it loads TensorFlow and Beam
        from tensorflow_datasets.scripts.cli import convert_format_utils

        convert_format_utils.convert_dataset(
            out_dir=None, out_file_format="array_record", dataset_version_dir=os.fspath(version_dir),
            num_workers=workers,
        )  # fmt: skip
    return version_dir


def _known_error(qualified_name: str) -> type[Exception] | None:
    """The exception class a child build died with, if it is a builtin data error or one of cemjax's."""
    builtin = {"FileNotFoundError": FileNotFoundError, "ValueError": ValueError}
    if qualified_name in builtin:
        return builtin[qualified_name]
    module, _, cls = qualified_name.rpartition(".")
    if module.startswith("cemjax."):
        found = getattr(importlib.import_module(module), cls, None)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    return None


def _has_array_record(version_dir: Path) -> bool:
    return any(p.name.split(".")[-1].startswith("array_record") for p in version_dir.glob("*array_record*"))


def build_cem500k(manual_dir: str | os.PathLike, data_dir: str | os.PathLike) -> Path:
    """Build `cem500k` from a patch folder (EMPIAR-10592 release or curation output); returns the version dir."""
    return build("cem500k", manual_dir, data_dir)


def build_benchmark(config: str, manual_dir: str | os.PathLike, data_dir: str | os.PathLike) -> Path:
    """Build `cem_benchmarks/<config>` from the benchmarks root (the reference's layout); returns the version dir."""
    return build(f"cem_benchmarks/{config}", manual_dir, data_dir)


def build_benchmarks(configs, manual_dir: str | os.PathLike, data_dir: str | os.PathLike) -> dict[str, Path]:
    """Build several `cem_benchmarks` configs in one child process; returns {config: version dir}."""
    configs = list(configs)
    paths = build_many([f"cem_benchmarks/{c}" for c in configs], manual_dir, data_dir)
    return dict(zip(configs, paths, strict=True))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="cem500k and/or cem_benchmarks/<config> (several: one process)")
    ap.add_argument("--manual_dir", required=True)
    ap.add_argument("--data_dir", default="~/tensorflow_datasets")
    ap.add_argument("--overwrite", action="store_true", help="replace a build made from another folder or content")
    args = ap.parse_args(argv)
    for path in build_many(args.names, args.manual_dir, args.data_dir, isolated=False, overwrite=args.overwrite):
        print(f"{RESULT_PREFIX}{path}", flush=True)


if __name__ == "__main__":
    if os.environ.get(CHILD_ENV):
        main()
    else:
        sys.exit(guarded(main)())
