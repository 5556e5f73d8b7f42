"""CREMI synaptic clefts (binary): 5,000 iterations, crop 512, batch 16, crop-non-empty-mask p 0.8; trained on
samples A and B, 3D stack IoU on sample C.

REFERENCE §4. Paper protocol (pretrained encoders frozen, random init trained fully):

  python experiments/finetune.py --workdir=runs/cremi/random \
      --config=experiments/configs/benchmarks/cremi.py:init=random
  python experiments/finetune.py --workdir=runs/cremi/cem500k \
      --config=experiments/configs/benchmarks/cremi.py:init=cem500k,weights=W.pth.tar

`:variant=demo` / `:variant=test` shrink the model and run for the demo and the tests; see cemjax.seg.config.
"""

from cemjax.seg.config import finetune_config


def get_config(arg: str = ""):
    return finetune_config("cremi", arg, iterations=5_000, crop=512, batch_size=16, num_classes=1, eval_mode="stack")
