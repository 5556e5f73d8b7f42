"""MoCoV2 (He et al. 2020; Chen et al. 2020) as CEM500K pretrains with it: loss, step, views, trainer, export.

`train(config, workdir)` runs or resumes a run of `cemjax/configs/mocov2.py`; `restore_encoder(workdir)` and
`export(workdir)` read its workdir back (see `cemjax.methods`).
"""

from cemjax.methods.mocov2.export import export, restore_encoder

__all__ = ["export", "restore_encoder", "train"]


def __getattr__(name: str):
    # `train` is imported on first use: importing the step must not pull the input pipeline (benchmarks run
    # where grain and TFDS are not installed)
    if name == "train":
        from cemjax.methods.mocov2.trainer import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
