"""Opening this project's TFDS builds: the builders get registered, and "not built" becomes the build command.

Every reader of a build (pretraining, fine-tuning, evaluation, the demo) goes through `data_source`.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

import tfds_cem500k  # noqa: F401  (the import registers the cem500k and cem_benchmarks builders with TFDS)
from cemjax.common.errors import InputError

DEFAULT_DATA_DIR = "~/tensorflow_datasets"


class NotBuiltError(InputError, FileNotFoundError):
    """A dataset split that is not built in the data_dir; the message holds the command that builds it."""


def build_command(name: str, data_dir: str | None) -> str:
    source = "PATCH_FOLDER" if name.split("/")[0] == "cem500k" else "BENCHMARKS_ROOT"
    return f"python -m cemjax.data.build {name} --manual_dir {source} --data_dir {data_dir or DEFAULT_DATA_DIR}"


def data_source(name: str, split: str, data_dir: str | None):
    """`tfds.data_source(name, split=split, data_dir=data_dir)`, or NotBuiltError with the build command."""
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (TFDS raises several types for a missing build or split)
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise NotBuiltError(
            f"{name} split {split!r} is not built in {data_dir or DEFAULT_DATA_DIR} ({type(err).__name__}: {first}). "
            f"Build it: {build_command(name, data_dir)}"
        ) from err
