"""Self-supervised pretraining with the method its config names (`config.method`; see `cemjax.methods`).

cemjax-pretrain --config=mocov2 --workdir=runs/mocov2 --config.data.data_dir=~/tensorflow_datasets
cemjax-pretrain --config=mocov2:demo --workdir=out/pretrain        # minutes on 2 CPU cores, no data needed
cemjax-pretrain --config=swav:demo --workdir=out/swav              # SwAV, the same way
"""

from absl import flags

from cemjax import methods
from cemjax.cli.flags import define_config_flags, print_outputs, run_absl

FLAGS = flags.FLAGS


def main(argv) -> int:
    del argv
    outputs = methods.get(FLAGS.config.method).train(FLAGS.config, FLAGS.workdir)
    print_outputs(outputs, outputs.get("exports"))
    return 0


def run() -> None:
    define_config_flags(
        "A config name of cemjax/configs (mocov2[:variant], swav[:variant]) or a config file path[:arg]."
    )
    run_absl(main)


if __name__ == "__main__":
    run()
