"""MoCoV2 pretraining. The command for each recipe is in the config's docstring, e.g.

python experiments/pretrain.py --config=experiments/configs/mocov2_cem500k.py:demo --workdir=out/pretrain
"""

from absl import app, flags
from ml_collections import config_flags

from cemjax.train.pretrain import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (get_config(arg)); `path.py:variant`.", lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard, metrics and exports go here (local or gs://).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    outputs = train(FLAGS.config, FLAGS.workdir)
    print(f"finished at step {outputs['step']}: {outputs['metrics']}")
    for name, path in outputs.get("exports", {}).items():
        print(f"  {name}: {path}")


if __name__ == "__main__":
    app.run(main)
