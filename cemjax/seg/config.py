"""The fine-tuning recipe of REFERENCE §4 as an `ml_collections.ConfigDict`; one thin file per benchmark in
`experiments/configs/benchmarks/` fills in that benchmark's numbers.

The config argument (after the file name) is a comma-separated `key=value` list:

  init=random|cem500k|imagenet|PATH   encoder initialisation (PATH: a pretraining workdir, a MoCo `.pth.tar`,
                                      torchvision weights, an smp Unet state_dict or a cemjax model directory)
  weights=PATH                        the file behind init=cem500k / init=imagenet (nothing is downloaded)
  variant=paper|demo|test             paper: ResNet-50 and the paper's numbers; demo / test: small and fast
"""

from __future__ import annotations

import ml_collections

INITS = ("random", "cem500k", "imagenet")
FREEZE_POLICIES = ("none", "layer4", "layer3", "layer2", "layer1", "all")
IMAGENET_NORMS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_ARG_KEYS = ("init", "weights", "variant")


def parse_arg(arg: str) -> dict[str, str]:
    """`"init=cem500k,weights=/w.pth.tar"` → {"init": "cem500k", "weights": "/w.pth.tar"}; a bare word is the
    variant (`"demo"`)."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in (arg or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            key, value = "variant", key
        if key not in _ARG_KEYS:
            raise ValueError(f"unknown config argument {key!r} in {arg!r}; use {', '.join(_ARG_KEYS)} (key=value, …)")
        out[key] = value
    return out


def finetune_config(
    benchmark: str,
    arg: str = "",
    *,
    iterations: int,
    crop: int,
    batch_size: int,
    num_classes: int,
    eval_mode: str,
    eval_classes: tuple[int, ...] = (1,),
    class_weights: tuple[float, ...] = (),
    mask_to_truth: bool = False,
    instance_match: bool = False,
) -> ml_collections.ConfigDict:
    """One benchmark's config. `num_classes` is the model's output channels (1: binary, BCE); `eval_mode` is
    "2d", "stack", "orthoplane" or "mixed" (all_mito: each source benchmark's own mode)."""
    opts = parse_arg(arg)
    c = ml_collections.ConfigDict()
    c.benchmark = benchmark
    c.variant = opts.get("variant", "paper")
    c.seed = 0
    c.init = opts.get("init", "random")
    c.init_weights = opts.get("weights", "")
    c.finetune_layer = "auto"  # none | layer4..layer1 | all; auto = the paper: "none" if pretrained, else "all"
    c.unfreeze_encoder_bn = False  # reference option: BN affine parameters of a frozen encoder stay trainable
    c.frozen_bn_stats = "update"  # reference: frozen encoder BN still updates running stats (train mode); "fixed"

    c.data = ml_collections.ConfigDict()
    c.data.data_dir = ""  # TFDS data_dir holding cem_benchmarks/<benchmark>
    c.data.loader_crop = 0  # host crop fed to the device augmentation; 0 = the augmentation crop
    c.data.nonempty_crops = -1  # crop-non-empty-mask p 0.8: -1 = the benchmark's choice (REFERENCE §4), 0 off, 1 on
    c.data.worker_count = 0
    c.data.norms = ()  # () = from the init: checkpoint norms, ImageNet's, or the training split's statistics

    c.model = ml_collections.ConfigDict()
    c.model.depth = 50
    c.model.num_classes = num_classes
    c.model.compute_dtype = "float32"

    c.batch_size = batch_size
    c.crop = crop
    c.iterations = iterations

    c.optim = ml_collections.ConfigDict()
    c.optim.max_lr = 0.003
    c.optim.weight_decay = 0.1
    c.optim.pct_start = 0.3
    c.optim.div_factor = 25.0
    c.optim.final_div_factor = 1e4

    c.loss = ml_collections.ConfigDict()
    c.loss.class_weights = tuple(class_weights)

    c.eval = ml_collections.ConfigDict()
    c.eval.mode = eval_mode
    c.eval.classes = tuple(eval_classes)
    c.eval.mask_to_truth = mask_to_truth
    c.eval.instance_match = instance_match
    c.eval.split = "test"
    c.eval.batch_size = 8
    c.eval.overlays = 2  # overlay PNGs per test set

    c.mesh = ml_collections.ConfigDict()
    c.mesh.num_devices = -1
    c.mesh.param_sharding = "replicate"
    c.distributed = ml_collections.ConfigDict()
    c.distributed.coordinator = ""
    c.distributed.num_processes = 1
    c.distributed.process_id = 0

    c.checkpoint_every = 500
    c.keep_checkpoints = 2
    c.async_checkpointing = True
    c.log_every = 50

    if c.variant in ("demo", "test"):
        small = c.variant == "test"
        c.model.depth = 18
        c.batch_size = 4 if small else 8
        c.crop = 64 if small else 128
        c.data.loader_crop = 0 if small else 256  # RandomResizedCrop then sees 0.56-2x the native scale
        c.data.nonempty_crops = 1  # few steps: most random crops of sparse organelles hold no foreground
        c.iterations = 6 if small else 130
        c.checkpoint_every = 3 if small else 60
        c.log_every = 2 if small else 20
        c.eval.batch_size = 4
        c.eval.overlays = 1
        c.async_checkpointing = not small
    elif c.variant != "paper":
        raise ValueError(f"unknown variant {c.variant!r}: use paper, demo or test")
    return c


def validate(config, num_devices: int) -> None:
    """One-line errors for configs that cannot run."""
    problems = []
    if config.batch_size % num_devices:
        problems.append(f"batch_size={config.batch_size} is not divisible by the {num_devices} devices of the mesh")
    if config.crop % 32:
        problems.append(f"crop={config.crop} must be a multiple of 32 (the UNet's stride)")
    if config.finetune_layer not in FREEZE_POLICIES + ("auto",):
        problems.append(f"finetune_layer={config.finetune_layer!r}: use auto, {', '.join(FREEZE_POLICIES)}")
    if config.frozen_bn_stats not in ("update", "fixed"):
        problems.append(f"frozen_bn_stats={config.frozen_bn_stats!r}: use 'update' (the reference) or 'fixed'")
    weights = tuple(config.loss.class_weights)
    if weights and len(weights) != config.model.num_classes:
        problems.append(f"loss.class_weights has {len(weights)} entries for {config.model.num_classes} classes")
    if config.init in ("cem500k", "imagenet") and not config.init_weights:
        problems.append(f"init={config.init} needs weights=PATH (a local file; nothing is downloaded)")
    if problems:
        raise ValueError("invalid fine-tuning config: " + "; ".join(problems))


def resolve_finetune_layer(config) -> str:
    """The freeze policy in force: "auto" is the paper's protocol (pretrained frozen, random trained fully)."""
    if config.finetune_layer != "auto":
        return config.finetune_layer
    return "all" if config.init == "random" else "none"
