"""Segment a whole image or volume with a fine-tuned model directory, block by block (`cemjax.segment.run`).

  cemjax-segment --model=runs/mine/model --input=volume.mrc --output=volume_seg.zarr [--mode=stack|orthoplane]
      [--probabilities] [--instances] [--spacing=50,4,4] [--overwrite]

Output `.zarr`: OME-Zarr (labels/segmentation, + labels/instances, probabilities/) with the input's voxel spacing,
readable by napari-ome-zarr and ome-zarr-py; `.tif`: a multi-page TIFF. A rerun of a killed job resumes; an
existing output is refused unless --overwrite. Several hosts: the same command on each with --coordinator,
--num_processes and --process_id (each takes every n-th block).
"""

from __future__ import annotations

from absl import flags

from cemjax.cli.flags import quiet_library_logs, run_guarded
from cemjax.common.errors import ConfigError
from cemjax.segment.run import segment

FLAGS = flags.FLAGS


def _numbers(text: str, name: str, kind=float) -> tuple | None:
    if not text:
        return None
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--{name}={text!r}: a comma list of numbers") from None


def main(argv) -> int:
    del argv
    quiet_library_logs(FLAGS.verbose)
    block = _numbers(FLAGS.block, "block", int) or (None, None, None)
    if len(block) != 3:
        raise ConfigError(f"--block={FLAGS.block!r}: give Z,Y,X (0 for the default along an axis)")
    distributed = None
    if FLAGS.coordinator:
        distributed = (FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
    out = segment(
        FLAGS.model, FLAGS.input, FLAGS.output, mode=FLAGS.mode or None, probabilities=FLAGS.probabilities,
        instances=FLAGS.instances, spacing=_numbers(FLAGS.spacing, "spacing"), channel=FLAGS.channel or None,
        overwrite=FLAGS.overwrite, max_tile=FLAGS.max_tile or None, halo=FLAGS.halo,
        block=tuple(b or None for b in block), batch_size=FLAGS.batch_size, ngff=FLAGS.ngff,
        num_devices=FLAGS.num_devices, distributed=distributed,
    )  # fmt: skip
    done = "resumed and finished" if out["resumed"] else "finished"
    print(f"{done}: {out['output']} ({out['mode']}, {out['computed']} of {out['blocks']} blocks computed now)")
    if out["objects_csv"]:
        print(f"  objects: {out['objects']} in {out['objects_csv']}")
    return 0


def define_flags() -> None:
    flags.DEFINE_string("model", None, "A fine-tuned model directory (spec.json, state/, model.json).", required=True)
    flags.DEFINE_string("input", None, "Image or volume: tif, mrc, nrrd, h5[::key], zarr, png …", required=True)
    flags.DEFINE_string("output", None, "Output .zarr (OME-Zarr) or .tif.", required=True)
    flags.DEFINE_enum("mode", "", ["", "2d", "stack", "orthoplane"], "Default: the model's (model.json).")
    flags.DEFINE_bool("probabilities", False, "Also write class probabilities (uint8, p · 255).")
    flags.DEFINE_bool("instances", False, "Also write connected components per class and <output>.objects.csv.")
    flags.DEFINE_string("spacing", "", "Voxel spacing SZ,SY,SX in nm (SY,SX for 2D) when the file has none.")
    flags.DEFINE_string("channel", "", "RGB input: gray (luma) or 0/1/2.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing output (else it is refused, or resumed if unfinished).")
    flags.DEFINE_integer("max_tile", 0, "Largest tile edge in px (default 1024 for 2d/stack, 256 orthoplane).")
    flags.DEFINE_integer("halo", 32, "Context around each block, px (rounded up to a multiple of 32).")
    flags.DEFINE_string("block", "", "Block edges Z,Y,X (0 = default along that axis).")
    flags.DEFINE_integer("batch_size", 0, "Planes per forward call (0: ~4 M pixels' worth).")
    flags.DEFINE_enum("ngff", "0.4", ["0.4", "0.5"], "OME-Zarr version: 0.4 (zarr v2) or 0.5 (zarr v3).")
    flags.DEFINE_integer("num_devices", -1, "Local devices to use (-1: all).")
    flags.DEFINE_string("coordinator", "", "Multi-host: HOST:PORT of process 0 (or 'auto').")
    flags.DEFINE_integer("num_processes", 1, "Multi-host: number of processes.")
    flags.DEFINE_integer("process_id", 0, "Multi-host: this process's index.")
    flags.DEFINE_bool("verbose", False, "Show library INFO logs and the traceback of expected errors.")


def run() -> None:
    define_flags()
    run_guarded(main)


if __name__ == "__main__":
    run()
