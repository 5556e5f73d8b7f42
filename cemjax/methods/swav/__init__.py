"""SwAV (Caron et al. 2020) as the CEM1.5M recipe pretrains with it (docs/method.md §2.4): Sinkhorn codes,
swapped prediction, multi-crop views, queue, prototype freezing, LARC; trainer and export.

`train(config, workdir)` runs or resumes a run of `cemjax/configs/swav.py`; `restore_encoder(workdir)` and
`export(workdir)` read its workdir back (see `cemjax.methods`).
"""

from cemjax.methods.swav.export import export, restore_encoder
from cemjax.methods.swav.trainer import train

__all__ = ["export", "restore_encoder", "train"]
