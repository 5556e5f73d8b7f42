"""What the absl-based jobs share: `--config` by name or path, quiet library logs, `--verbose`."""

from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cemjax.common.errors import guarded
from cemjax.configs import available, config_path


def define_config_flags(help_text: str) -> None:
    config_flags.DEFINE_config_file("config", None, help_text, lock_config=True)
    flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard, metrics and outputs go here (local or gs://).")
    flags.DEFINE_bool("verbose", False, "Show library INFO logs and the traceback of expected errors.")
    flags.mark_flags_as_required(["config", "workdir"])


def resolve_config_names(argv: list[str]) -> list[str]:
    """`--config=mocov2:demo` → `--config=<package>/configs/mocov2.py:demo`; paths to config files pass as they
    are (`--config=experiments/configs/mocov2_cem500k.py:demo`)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config=") or (arg == "--config" and i + 1 < len(out)):
            j, value = (i, arg[len("--config=") :]) if arg != "--config" else (i + 1, out[i + 1])
            name, sep, rest = value.partition(":")
            if not os.path.exists(name) and name in available():
                value = f"{config_path(name)}{sep}{rest}"
                out[j] = f"--config={value}" if j == i else value
    return out


def quiet_library_logs(verbose: bool) -> None:
    """Orbax logs ~50 INFO lines per save and Beam's workers log at INFO: keep the jobs' own lines only."""
    if not verbose:
        absl_logging.set_verbosity(absl_logging.WARNING)
        for name in ("absl", "orbax", "apache_beam", "jax._src.distributed"):
            logging.getLogger(name).setLevel(logging.WARNING)


def print_outputs(outputs: dict, paths: dict | None = None) -> None:
    """The end of a training job: its last step and metrics, then one `name: path` line per output file."""
    print(f"finished at step {outputs['step']}: {outputs['metrics']}")
    for name, path in (paths or {}).items():
        if path:
            print(f"  {name}: {path}")


def run_absl(main) -> None:
    """`app.run` with config names resolved, quiet logs and the one-line error style (`guarded`)."""

    def body(argv):
        quiet_library_logs(flags.FLAGS.verbose)
        return guarded(main)(argv)

    app.run(body, argv=resolve_config_names(sys.argv))
