"""Fine-tune and evaluate a grid of benchmark × encoder init and write the results table (Markdown, CSV, PNG).

Finished cells are skipped and unfinished ones resume, so the same command can be run again after a crash:

  cemjax-evaluate --benchmarks=lucchi_pp,guay,urocell --inits=random,cem500k=W/mocov2.pth.tar \\
      --data_dir=~/tensorflow_datasets --workdir=runs/table2
  cemjax-evaluate --benchmarks=lucchi_pp --inits=random,mine=runs/pretrain --variant=demo ...

An init is `random`, `cem500k=FILE`, `imagenet=FILE` (torchvision ResNet weights) or `NAME=PATH` (a pretraining
workdir, a MoCo .pth.tar, torchvision/smp weights or a cemjax model directory).
"""

from absl import flags

from cemjax.benchmarks import BENCHMARKS
from cemjax.cli.flags import quiet_library_logs, run_guarded
from cemjax.seg.grid import run_grid, write_table

FLAGS = flags.FLAGS


def main(argv) -> int:
    del argv
    quiet_library_logs(FLAGS.verbose)

    def overrides(config):
        if FLAGS.data_dir:
            config.data.data_dir = FLAGS.data_dir
        if FLAGS.iterations:
            config.iterations = FLAGS.iterations

    rows = run_grid(FLAGS.workdir, FLAGS.benchmarks, FLAGS.inits, variant=FLAGS.variant, overrides=overrides)
    paths = write_table(rows, FLAGS.workdir)
    print(open(paths["markdown"]).read())
    print("\n".join(f"  {k}: {v}" for k, v in paths.items()))
    return 0


def run() -> None:
    flags.DEFINE_list("benchmarks", ["lucchi_pp"], f"Benchmarks of cemjax.benchmarks: {', '.join(BENCHMARKS)}.")
    flags.DEFINE_list("inits", ["random"], "Encoder inits: random, cem500k=FILE, imagenet=FILE, NAME=PATH.")
    flags.DEFINE_string("variant", "paper", "paper, demo or test (see cemjax/configs/finetune.py).")
    flags.DEFINE_string("data_dir", "", "TFDS data_dir holding the built cem_benchmarks configs.")
    flags.DEFINE_integer("iterations", 0, "Override every cell's iterations (0: the recipe's).")
    flags.DEFINE_string("workdir", None, "Grid root: <workdir>/<benchmark>/<init>/ per cell, results.* at the top.")
    flags.DEFINE_bool("verbose", False, "Show library INFO logs and the traceback of expected errors.")
    flags.mark_flags_as_required(["workdir"])
    run_guarded(main)


if __name__ == "__main__":
    run()
