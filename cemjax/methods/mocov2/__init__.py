"""MoCoV2 (He et al. 2020; Chen et al. 2020) as CEM500K pretrains with it: loss, step, views, trainer, export.

`train(config, workdir)` runs or resumes a run of `cemjax/configs/mocov2.py`; `restore_encoder(workdir)` and
`export(workdir)` read its workdir back (see `cemjax.methods`).
"""

from cemjax.methods.mocov2.export import export, restore_encoder
from cemjax.methods.mocov2.trainer import train

__all__ = ["export", "restore_encoder", "train"]
