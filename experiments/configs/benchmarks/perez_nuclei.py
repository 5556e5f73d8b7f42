"""Perez nuclei (binary): 2,500 iterations, crop 480, batch 16, 2D IoU after instance matching.

REFERENCE §4. Paper protocol (pretrained encoders frozen, random init trained fully):

  python experiments/finetune.py --workdir=runs/perez_nuclei/random \
      --config=experiments/configs/benchmarks/perez_nuclei.py:init=random
  python experiments/finetune.py --workdir=runs/perez_nuclei/cem500k \
      --config=experiments/configs/benchmarks/perez_nuclei.py:init=cem500k,weights=W.pth.tar

`:variant=demo` / `:variant=test` shrink the model and run for the demo and the tests; see cemjax.seg.config.
"""

from cemjax.seg.config import finetune_config


def get_config(arg: str = ""):
    return finetune_config(
        "perez_nuclei",
        arg,
        iterations=2_500,
        crop=480,
        batch_size=16,
        num_classes=1,
        eval_mode="2d",
        instance_match=True,
    )
