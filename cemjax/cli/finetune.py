"""Fine-tune a UNet on one benchmark, evaluate it and export it (config: `cemjax/configs/finetune.py`).

  cemjax-finetune --config=finetune:benchmark=lucchi_pp,init=random --workdir=runs/lucchi_pp/random \\
      --config.data.data_dir=~/tensorflow_datasets
"""

import json

from absl import flags

from cemjax.cli.flags import define_config_flags, print_outputs, run_absl
from cemjax.seg.trainer import finetune

FLAGS = flags.FLAGS


def main(argv) -> int:
    del argv
    out = finetune(FLAGS.config, FLAGS.workdir)
    print_outputs(out, {key: out.get(key) for key in ("model_dir", "smp_export", "smp_safetensors", "loss_curve")})
    if "results" in out and "validation" in out["results"]:
        r = out["results"]
        v = r["validation"]
        per_class = ", ".join(f"{n} {iou:.4f}" for n, iou in v["per_class"].items())
        print(f"{r['dataset']['folder']} ({r['init']}, finetune_layer={r['finetune_layer']}): validation IoU "
              f"{v['iou']:.4f} ({per_class}) at step {r['model_from_step']}")  # fmt: skip
    elif "results" in out:
        r = out["results"]
        print(f"{r['benchmark']} ({r['init']}, finetune_layer={r['finetune_layer']}): IoU {r['iou']:.4f}")
        print(json.dumps({k: v["iou"] for k, v in r["sets"].items()}))
    return 0


def run() -> None:
    define_config_flags("finetune:benchmark=…,init=…,weights=…,variant=… or a config file path[:arg].")
    run_absl(main)


if __name__ == "__main__":
    run()
