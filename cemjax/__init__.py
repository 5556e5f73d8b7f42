"""cemjax: CEM500K in JAX/Flax — EM curation, TFDS packaging, MoCoV2 pretraining, UNet transfer, PyTorch interop."""

__version__ = "0.1.0"
