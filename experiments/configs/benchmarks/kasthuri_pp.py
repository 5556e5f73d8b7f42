"""Kasthuri++ (mitochondria, binary): 10,000 iterations, crop 512, batch 16, crop-non-empty-mask p 0.8, 2D IoU.

REFERENCE §4. Paper protocol (pretrained encoders frozen, random init trained fully):

  python experiments/finetune.py --workdir=runs/kasthuri_pp/random \
      --config=experiments/configs/benchmarks/kasthuri_pp.py:init=random
  python experiments/finetune.py --workdir=runs/kasthuri_pp/cem500k \
      --config=experiments/configs/benchmarks/kasthuri_pp.py:init=cem500k,weights=W.pth.tar

`:variant=demo` / `:variant=test` shrink the model and run for the demo and the tests; see cemjax.seg.config.
"""

from cemjax.seg.config import finetune_config


def get_config(arg: str = ""):
    return finetune_config(
        "kasthuri_pp", arg, iterations=10_000, crop=512, batch_size=16, num_classes=1, eval_mode="2d"
    )
