"""What the absl-based jobs share: `--config` by name or path, quiet library logs, `--verbose`."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cemjax.common.errors import EXIT_CONFIG, guarded, one_line
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


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with the one-line style: an unknown `--config.KEY`, a value of the wrong type or a
    config file that does not load ends with `error: …` and exit code 2, not a traceback."""
    try:
        rest = flags.FLAGS(argv)
        if "config" in flags.FLAGS:
            flags.FLAGS.config.keys()  # a config file is loaded lazily: a missing one fails here, not inside a job
        return rest
    except flags.Error as err:
        message = str(err)
        if "Traceback" in message:  # a config file that raised: its flag and its last line, not the traceback
            lines = [line for line in message.splitlines() if line.strip()]
            message = f"{lines[0].split(': Error whilst')[0]}: {lines[-1].strip()}"
    except OSError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        message = f"--config: {lines[-1]} (give a config name such as mocov2:demo or a path to a config file)"
    except (AttributeError, KeyError) as err:
        overrides = " ".join(a for a in argv[1:] if a.startswith("--config."))
        message = (f"unknown config field {str(err).strip(chr(34))} in {overrides}: check the spelling against the "
                   f"config file (its fields: --config=NAME --helpfull)")  # fmt: skip
    except (TypeError, ValueError) as err:
        message = f"bad flag in {' '.join(argv[1:])}: {err} (see the config's fields with --config=NAME --helpfull)"
    if "--verbose" in argv:
        traceback.print_exc()
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CONFIG)


def run_guarded(main) -> None:
    """`app.run` for the jobs without a config: flag errors and expected errors in one line each."""
    app.run(guarded(main), flags_parser=parse_flags)


def run_absl(main) -> None:
    """`app.run` with config names resolved, quiet logs and the one-line error style (`guarded`)."""

    def body(argv):
        quiet_library_logs(flags.FLAGS.verbose)
        return guarded(main)(argv)

    app.run(body, argv=resolve_config_names(sys.argv), flags_parser=parse_flags)
