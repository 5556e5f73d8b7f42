"""All Mitochondria (binary): 10,000 iterations, crop 256, batch 32, noise + blur, on 256-px tiles of five
benchmarks' training sets; tested on each of their test sets in its own mode (Perez instance-matched, Lucchi++
and Kasthuri++ 2D, Guay stack masked to cells, UroCell orthoplane).

REFERENCE §4. Paper protocol (pretrained encoders frozen, random init trained fully):

  python experiments/finetune.py --workdir=runs/all_mito/random \
      --config=experiments/configs/benchmarks/all_mito.py:init=random
  python experiments/finetune.py --workdir=runs/all_mito/cem500k \
      --config=experiments/configs/benchmarks/all_mito.py:init=cem500k,weights=W.pth.tar

`:variant=demo` / `:variant=test` shrink the model and run for the demo and the tests; see cemjax.seg.config.
"""

from cemjax.seg.config import finetune_config


def get_config(arg: str = ""):
    return finetune_config(
        "all_mito", arg, iterations=10_000, crop=256, batch_size=32, num_classes=1, eval_mode="mixed"
    )
