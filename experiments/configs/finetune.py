"""Fine-tuning on one benchmark; the config is `cemjax/configs/finetune.py` (its docstring lists the arguments):

  python experiments/finetune.py --workdir=runs/lucchi_pp/random \\
      --config=experiments/configs/finetune.py:benchmark=lucchi_pp,init=random
  python experiments/finetune.py --workdir=runs/guay/cem500k \\
      --config=experiments/configs/finetune.py:benchmark=guay,init=cem500k,weights=W.pth.tar
"""

from cemjax.configs.finetune import get_config

__all__ = ["get_config"]
