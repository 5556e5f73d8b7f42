"""UroCell (background, lysosome, mitochondria; weighted CE): 2,500 iterations, crop 224, batch 16, trained on
xy, xz and yz slices; 3D orthoplane IoU on classes 1-2.

REFERENCE §4. Paper protocol (pretrained encoders frozen, random init trained fully):

  python experiments/finetune.py --workdir=runs/urocell/random \
      --config=experiments/configs/benchmarks/urocell.py:init=random
  python experiments/finetune.py --workdir=runs/urocell/cem500k \
      --config=experiments/configs/benchmarks/urocell.py:init=cem500k,weights=W.pth.tar

`:variant=demo` / `:variant=test` shrink the model and run for the demo and the tests; see cemjax.seg.config.
"""

from cemjax.seg.config import finetune_config


def get_config(arg: str = ""):
    return finetune_config(
        "urocell",
        arg,
        iterations=2_500,
        crop=224,
        batch_size=16,
        num_classes=3,
        eval_mode="orthoplane",
        eval_classes=(1, 2),
        class_weights=(0.1, 1.0, 1.0),
    )
