"""cemjax: CEM500K in JAX/Flax — EM curation, TFDS packaging, self-supervised pretraining, UNet transfer,
PyTorch interop. The Python API is `cemjax.api` (its names are also reachable here, e.g. `cemjax.pretrain`)."""

__version__ = "0.2.0"

_API = ("build_dataset", "curate", "evaluate_grid", "export", "finetune", "get_config", "load_model", "load_predictor",
        "pretrain", "restore_encoder", "segment")  # fmt: skip


def __getattr__(name: str):
    # `import cemjax` stays light (no JAX, TFDS or Beam until an API function is asked for)
    if name in _API:
        from cemjax import api

        return getattr(api, name)
    raise AttributeError(f"module 'cemjax' has no attribute {name!r}")
