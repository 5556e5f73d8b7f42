"""Guay platelets (7 classes, weighted CE): 1,000 iterations, crop 512, batch 16, noise + blur; 3D stack IoU
on classes 2-6 with the prediction masked to truth > 0.

REFERENCE §4. Paper protocol (pretrained encoders frozen, random init trained fully):

  python experiments/finetune.py --workdir=runs/guay/random \
      --config=experiments/configs/benchmarks/guay.py:init=random
  python experiments/finetune.py --workdir=runs/guay/cem500k \
      --config=experiments/configs/benchmarks/guay.py:init=cem500k,weights=W.pth.tar

`:variant=demo` / `:variant=test` shrink the model and run for the demo and the tests; see cemjax.seg.config.
"""

from cemjax.seg.config import finetune_config


def get_config(arg: str = ""):
    return finetune_config(
        "guay",
        arg,
        iterations=1_000,
        crop=512,
        batch_size=16,
        num_classes=7,
        eval_mode="stack",
        eval_classes=(2, 3, 4, 5, 6),
        class_weights=(0.1, 0.1, 1.0, 1.0, 0.1, 3.0, 3.0),
        mask_to_truth=True,
    )
