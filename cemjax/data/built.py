"""Opening this project's TFDS builds: the builders get registered, and "not built" becomes the build command.

Every reader of a build (pretraining, fine-tuning, evaluation, the demo) goes through `data_source`.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

import tfds_cem500k  # noqa: F401  (the import registers the cem500k and cem_benchmarks builders with TFDS)
from cemjax.common.errors import InputError
from tfds_cem500k.common import formats_on_disk

DEFAULT_DATA_DIR = "~/tensorflow_datasets"


class NotBuiltError(InputError, FileNotFoundError):
    """A dataset split that is not built in the data_dir; the message holds the command that builds it."""


def build_command(name: str, data_dir: str | None) -> str:
    source = "PATCH_FOLDER" if name.split("/")[0] == "cem500k" else "BENCHMARKS_ROOT"
    return f"python -m cemjax.data.build {name} --manual_dir {source} --data_dir {data_dir or DEFAULT_DATA_DIR}"


def built_versions(name: str, data_dir: str | None) -> dict[str, list[str]]:
    """{version folder: file formats in it} of the builds of `name` in data_dir."""
    root = Path(data_dir or DEFAULT_DATA_DIR).expanduser() / name
    folders = sorted(p for p in root.glob("*") if (p / "dataset_info.json").is_file()) if root.is_dir() else []
    return {str(p): formats_on_disk(p) for p in folders}


def data_source(name: str, split: str, data_dir: str | None):
    """`tfds.data_source(name, split=split, data_dir=data_dir)` (array_record), or NotBuiltError with the
    command that builds it — or converts it in place when it was built as tfrecord only (`tfds build`)."""
    tfrecord_only = [v for v, formats in built_versions(name, data_dir).items() if formats == ["tfrecord"]]
    if tfrecord_only:
        raise NotBuiltError(
            f"{tfrecord_only[-1]} holds tfrecord files only (built by `tfds build` without --file_format="
            f"array_record?); grain and tfds.data_source read array_record. Add them in place: "
            f"{build_command(name, data_dir)}"
        )
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (TFDS raises several types for a missing build or split)
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise NotBuiltError(
            f"{name} split {split!r} is not built in {data_dir or DEFAULT_DATA_DIR} ({type(err).__name__}: {first}). "
            f"Build it: {build_command(name, data_dir)}"
        ) from err
