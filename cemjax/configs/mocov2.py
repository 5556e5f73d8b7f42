"""MoCoV2 on CEM500K (docs/method.md §2), as code.

  cemjax-pretrain --config=mocov2 --workdir=/tmp/mocov2
  cemjax-pretrain --config=mocov2:pod --workdir=gs://BUCKET/mocov2
  python experiments/pretrain.py --config=experiments/configs/mocov2_cem500k.py:demo --workdir=out/demo/pretrain

Variants (the `:arg` after the file name): "paper" (default: ResNet-50, batch 128, 200 epochs, lr 0.015, ×0.1 at
120/160, 4 BN groups as on the paper's 4 GPUs), "pod" (batch 4096, lr scaled linearly, bf16, FSDP-ready, 128 BN
groups of 32), "demo" (ResNet-18 at 96 px on a synthetic source: minutes on 2 CPU cores), "test" (tiny).
Override any field from the command line: `--config.optim.base_lr=0.03`.
"""

import ml_collections

from cemjax.configs._pretrain import pretraining_config, use_pod_settings, use_synthetic_data


def get_config(arg: str = "paper") -> ml_collections.ConfigDict:
    c = pretraining_config("mocov2", arg)
    c.model.embed_dim = 128

    c.moco = ml_collections.ConfigDict()
    c.moco.queue_size = 65_536
    c.moco.momentum = 0.999
    c.moco.temperature = 0.2
    # "shuffle" (MoCo's shuffle-BN over bn_groups groups, any mesh), "sync" (global SyncBN) or "shard_map"
    # (shuffle-BN with one group per device of the mesh, under jax.shard_map; bn_groups ignored)
    c.moco.bn_mode = "shuffle"
    c.moco.bn_groups = 4  # the paper's 4 GPUs × 32 images

    c.optim = ml_collections.ConfigDict()
    c.optim.base_lr = 0.015  # at batch 128; scaled linearly with batch_size
    c.optim.momentum = 0.9
    c.optim.weight_decay = 1e-4
    c.optim.schedule = "step"  # or "cosine"
    c.optim.milestones = (120, 160)

    if c.variant == "pod":
        c.batch_size = 4096
        c.moco.bn_groups = 128
        use_pod_settings(c)
    elif c.variant in ("demo", "test"):
        small = c.variant == "test"
        use_synthetic_data(c, small)
        c.model.encoder = "resnet18"
        c.model.embed_dim = 32 if small else 128
        # A run of a few hundred steps needs a key encoder that moves: at the paper's m = 0.999 it keeps 0.999^200
        # ≈ 82% of its random init after 200 steps and the contrastive task barely starts (measured: top-1 0.03 at
        # step 120); m = 0.99 with a 1,024-key queue reaches top-1 0.2-0.5 by step 80 on the synthetic patches.
        c.moco.momentum = 0.99
        c.moco.queue_size = 64 if small else 1024
        c.moco.bn_groups = 2 if small else 4
        c.batch_size = 8 if small else 32
        c.image_size = 32 if small else 96  # XLA:CPU convs on 2×2 maps (64 px → layer4) are ~3× slower here
        c.epochs = 2 if small else 20
        c.optim.milestones = (1,) if small else (12, 16)
        c.optim.base_lr = 0.06
    elif c.variant != "paper":
        raise ValueError(f"unknown config variant {arg!r}: use paper, pod, demo or test")
    return c
