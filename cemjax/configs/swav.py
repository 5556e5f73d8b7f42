"""SwAV on CEM1.5M (docs/method.md §2.4), the reference's v2 recipe, as code.

  cemjax-pretrain --config=swav --workdir=/tmp/swav --config.data.data_dir=~/tensorflow_datasets
  cemjax-pretrain --config=swav:pod --workdir=gs://BUCKET/swav
  cemjax-pretrain --config=swav:demo --workdir=out/swav          # minutes on 2 CPU cores, no data needed

Variants (the `:arg`): "paper" (default: ResNet-50, batch 64, 200 epochs, LARC + SGD lr 0.6 → 0.0006 cosine,
3,000 prototypes, 2 × 224 + 6 × 96 crops, queue of 3,840 from epoch 15, prototypes frozen for 5,005 steps,
source-balanced sampling γ = 0.5, mixed precision), "pod" (batch 4096 with SwAV's large-batch lr 4.8 → 0.0048,
no queue — the reference's own rounding of 3,840 to a multiple of the batch gives 0 —, the prototype freeze kept
at the same 320k images), "demo" (ResNet-18, 2 × 96 + 4 × 48 crops on synthetic patches), "test" (tiny).
The build is read as `data.dataset` (a CEM1.5M folder builds with the same `cem500k` builder).
"""

import ml_collections

from cemjax.common.norms import CEM15M_SWAV_NORMS
from cemjax.configs._pretrain import pretraining_config, use_pod_settings, use_synthetic_data


def get_config(arg: str = "paper") -> ml_collections.ConfigDict:
    c = pretraining_config("swav", arg)
    c.batch_size = 64  # global: the reference divides it over its GPUs
    c.data.norms = CEM15M_SWAV_NORMS
    c.data.balance_gamma = 0.5
    c.model.compute_dtype = "bfloat16"  # the reference trains under fp16 autocast; Sinkhorn and the loss in fp32

    c.swav = ml_collections.ConfigDict()
    c.swav.num_prototypes = 3000
    c.swav.feat_dim = 128
    c.swav.hidden_mlp = 2048
    c.swav.temperature = 0.1
    c.swav.epsilon = 0.05
    c.swav.sinkhorn_iterations = 3
    c.swav.crops_for_assign = (0, 1)
    c.swav.crop_sizes = (224, 96)
    c.swav.crop_counts = (2, 6)
    c.swav.crop_min_scales = (0.14, 0.05)
    c.swav.crop_max_scales = (1.0, 0.14)
    c.swav.queue_length = 3840  # rows per assigned view (global); 0 = no queue
    c.swav.queue_start_epoch = 15
    c.swav.freeze_prototypes_steps = 5005

    c.optim = ml_collections.ConfigDict()
    c.optim.base_lr = 0.6
    c.optim.final_lr = 0.0006
    c.optim.warmup_epochs = 0
    c.optim.start_lr = 0.0
    c.optim.momentum = 0.9
    c.optim.weight_decay = 1e-6
    c.optim.larc_trust = 0.001

    if c.variant == "pod":
        c.batch_size = 4096
        c.optim.base_lr, c.optim.final_lr = 4.8, 0.0048
        c.swav.queue_length = 0
        c.swav.freeze_prototypes_steps = 78  # 5,005 steps × 64 images ≈ 78 × 4096
        use_pod_settings(c)
    elif c.variant in ("demo", "test"):
        small = c.variant == "test"
        use_synthetic_data(c, small)
        c.model.encoder = "resnet18"
        c.model.compute_dtype = "float32"
        c.image_size = 32 if small else 96
        c.swav.crop_sizes = (32, 16) if small else (96, 48)
        c.swav.crop_counts = (2, 2) if small else (2, 4)
        c.swav.num_prototypes = 16 if small else 100
        c.swav.feat_dim = 16 if small else 128
        c.swav.hidden_mlp = 32 if small else 512
        c.swav.queue_length = 16 if small else 256
        c.swav.queue_start_epoch = 1 if small else 2
        c.swav.freeze_prototypes_steps = 2 if small else 20
        c.batch_size = 8 if small else 32
        c.epochs = 2 if small else 4
    elif c.variant != "paper":
        raise ValueError(f"unknown config variant {arg!r}: use paper, pod, demo or test")
    return c
