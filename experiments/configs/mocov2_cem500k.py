"""MoCoV2 on CEM500K; the config is `cemjax/configs/mocov2.py` (variants paper, pod, demo, test):

python experiments/pretrain.py --config=experiments/configs/mocov2_cem500k.py --workdir=/tmp/mocov2
python experiments/pretrain.py --config=experiments/configs/mocov2_cem500k.py:pod --workdir=gs://BUCKET/mocov2
python experiments/pretrain.py --config=experiments/configs/mocov2_cem500k.py:demo --workdir=out/demo/pretrain
"""

from cemjax.configs.mocov2 import get_config

__all__ = ["get_config"]
