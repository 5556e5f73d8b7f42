"""The fields every pretraining config shares (data, model, schedule length, mesh, processes, checkpoints,
online probes); each method's config module (`mocov2.py`, `swav.py`) starts from `pretraining_config` and adds
its own. Private: not a config name of its own."""

from __future__ import annotations

import ml_collections

from cemjax.common.norms import CEM500K_NORMS


def pretraining_config(method: str, variant: str) -> ml_collections.ConfigDict:
    """The shared defaults for `method` (the package under cemjax/methods/ that trains it) at the paper's scale."""
    c = ml_collections.ConfigDict()
    c.method = method
    c.variant = variant or "paper"
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = "tfds"  # "tfds" (a built cem500k) or "synthetic" (patches generated in memory)
    c.data.data_dir = ""  # TFDS data_dir; empty = TFDS default (~/tensorflow_datasets)
    c.data.dataset = "cem500k"
    c.data.split = "train"
    c.data.worker_count = 0  # grain worker processes per host
    c.data.synthetic_patches = 2048  # size of the in-memory source when source == "synthetic"
    c.data.norms = CEM500K_NORMS  # paper-era CEM500K mean / std of [0, 1] pixels
    c.data.canvas = 224  # patches stored at their true size (edge patches are smaller) sit on a square this big
    # source-balanced sampling (docs/method.md §2.3): P(patch) ∝ (1 / patches of its source)^γ; 0 = uniform
    c.data.balance_gamma = 0.0

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "resnet50"  # a name of cemjax.models.registry
    c.model.in_channels = 1
    c.model.compute_dtype = "float32"  # or "bfloat16" (parameters and BN statistics stay float32)

    c.batch_size = 128  # global
    c.image_size = 224  # the (largest) view size; also the size of synthetic patches and of probe patches
    c.epochs = 200
    c.steps_per_epoch = 0  # 0 = dataset size // batch_size
    c.max_steps = 0  # 0 = epochs · steps_per_epoch; set to stop early (e.g. the demo)

    c.mesh = ml_collections.ConfigDict()
    c.mesh.num_devices = -1  # all devices of all processes
    c.mesh.param_sharding = "replicate"  # or "fsdp"

    c.distributed = ml_collections.ConfigDict()
    c.distributed.coordinator = ""  # "" single process; "auto" on TPU pods/SLURM; "127.0.0.1:PORT" locally
    c.distributed.num_processes = 1
    c.distributed.process_id = 0

    c.checkpoint_every = 1000  # steps
    c.keep_checkpoints = 3
    c.async_checkpointing = True
    c.log_every = 20
    c.export_at_end = True

    # online probes on frozen encoder features (cemjax.train.probe): kNN (cosine, k, exp(cos / temperature)
    # votes) and a linear probe on labelled EM patches at image_size
    c.probe = ml_collections.ConfigDict()
    c.probe.every = 0  # steps; 0 = off
    c.probe.set = "synthetic"  # "synthetic" (organelle class at the patch centre) or "masks:DIR" (images/, masks/)
    c.probe.patches = 256  # labelled patches in all: about half train the probes, the others score them
    c.probe.k = 20
    c.probe.temperature = 0.07
    c.probe.batch_size = 64  # patches per forward pass
    return c


def use_pod_settings(c: ml_collections.ConfigDict) -> None:
    """What every method's `pod` variant shares: bf16, 8 grain workers per host, processes found by JAX, checkpoints
    every 500 steps (the batch and the method's own numbers are set by the method)."""
    c.model.compute_dtype = "bfloat16"
    c.data.worker_count = 8
    c.distributed.coordinator = "auto"
    c.checkpoint_every = 500


def use_synthetic_data(c: ml_collections.ConfigDict, small: bool) -> None:
    """The demo and test variants: synthetic patches generated in memory instead of a build (64 for `small`, the
    test variant, else 1,024), checkpoints and log lines at their short scale (synchronous saves in tests)."""
    c.data.source = "synthetic"
    c.data.synthetic_patches = 64 if small else 1024
    c.checkpoint_every = 4 if small else 100
    c.log_every = 2 if small else 10
    c.async_checkpointing = not small
