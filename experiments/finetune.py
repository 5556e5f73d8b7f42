"""Fine-tune a UNet on one benchmark, evaluate it and export it. Commands are in each config's docstring, e.g.

python experiments/finetune.py --config=experiments/configs/benchmarks/lucchi_pp.py:init=random \
    --config.data.data_dir=~/tensorflow_datasets --workdir=runs/lucchi_pp/random
"""

import json

from absl import app, flags
from ml_collections import config_flags

from cemjax.seg.finetune import finetune

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "benchmarks/<bench>.py:init=…,weights=…,variant=…", lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard, results.json, overlays and the smp export go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    out = finetune(FLAGS.config, FLAGS.workdir)
    print(f"finished at step {out['step']}: {out['metrics']}")
    if "results" in out:
        r = out["results"]
        print(f"{r['benchmark']} ({r['init']}, finetune_layer={r['finetune_layer']}): IoU {r['iou']:.4f}")
        print(json.dumps({k: v["iou"] for k, v in r["sets"].items()}))
    for key in ("model_dir", "smp_export", "loss_curve"):
        if out.get(key):
            print(f"  {key}: {out[key]}")


if __name__ == "__main__":
    app.run(main)
