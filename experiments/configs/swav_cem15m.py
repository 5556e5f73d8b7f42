"""SwAV on CEM1.5M; the config is `cemjax/configs/swav.py` (variants paper, pod, demo, test):

python experiments/pretrain.py --config=experiments/configs/swav_cem15m.py --workdir=/tmp/swav
python experiments/pretrain.py --config=experiments/configs/swav_cem15m.py:demo --workdir=out/swav
"""

from cemjax.configs.swav import get_config

__all__ = ["get_config"]
