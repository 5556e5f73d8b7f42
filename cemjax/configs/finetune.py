"""Fine-tuning a UNet on one benchmark (docs/method.md §4) or on your own labelled folder, as code. A
benchmark's numbers come from its recipe in `cemjax.benchmarks`, a folder's from `OWN_DATA`; the config argument
is a comma-separated `key=value` list:

  benchmark=NAME                      a benchmark of cemjax.benchmarks (lucchi_pp, guay, …)
  folder=PATH                         your data instead: PATH/images, PATH/masks (+ classes.json), see
                                      cemjax.data.folder; classes, outputs and eval mode come from the data
  init=random|cem500k|imagenet|PATH   encoder initialisation (PATH: a pretraining workdir, a MoCo `.pth.tar`,
                                      torchvision weights, an smp Unet state_dict or a cemjax model directory)
  weights=PATH                        the file behind init=cem500k / init=imagenet (nothing is downloaded)
  variant=paper|demo|test             paper: ResNet-50 and the paper's numbers; demo / test: small and fast

  cemjax-finetune --config=finetune:benchmark=lucchi_pp,init=random --workdir=runs/lucchi_pp/random \\
      --config.data.data_dir=~/tensorflow_datasets
  cemjax-finetune --config=finetune:folder=my_data,init=cem500k,weights=W.pth.tar --workdir=runs/mine \\
      --config.data.validation=0.2 --config.eval.patience=3
  python experiments/finetune.py --workdir=runs/guay/cem500k \\
      --config=experiments/configs/finetune.py:benchmark=guay,init=cem500k,weights=W.pth.tar
"""

from __future__ import annotations

import ml_collections

from cemjax.benchmarks import Recipe, get

ARG_KEYS = ("benchmark", "folder", "init", "weights", "variant")
OWN_DATA = Recipe(iterations=2_500, crop=256, batch_size=16)  # the paper's shorter runs (Perez, UroCell)
VARIANTS = ("paper", "demo", "test")


def parse_arg(arg: str) -> dict[str, str]:
    """`"benchmark=guay,init=cem500k,weights=/w.pth.tar"` → a dict; a bare word is the variant (`"demo"`)."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in (arg or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            key, value = "variant", key
        if key not in ARG_KEYS:
            raise ValueError(f"unknown config argument {key!r} in {arg!r}; use {', '.join(ARG_KEYS)} (key=value, …)")
        out[key] = value
    return out


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    opts = parse_arg(arg)
    folder = opts.get("folder", "")
    if folder and "benchmark" in opts:
        raise ValueError(f"give benchmark= or folder=, not both ({arg!r})")
    spec = get(opts.get("benchmark", "lucchi_pp"))
    recipe, evaluation = (OWN_DATA, None) if folder else (spec.recipe, spec.evaluation)
    c = ml_collections.ConfigDict()
    c.benchmark = "" if folder else spec.name
    c.variant = opts.get("variant", "paper")
    c.seed = 0
    c.init = opts.get("init", "random")
    c.init_weights = opts.get("weights", "")
    c.finetune_layer = "auto"  # none | <freeze point> | all; auto = the paper: "none" if pretrained, else "all"
    c.unfreeze_encoder_bn = False  # reference option: BN affine parameters of a frozen encoder stay trainable
    c.frozen_bn_stats = "update"  # reference: frozen encoder BN still updates running stats (train mode); "fixed"

    c.data = ml_collections.ConfigDict()
    c.data.data_dir = ""  # TFDS data_dir holding cem_benchmarks/<benchmark>
    c.data.folder = folder  # your data: images/ + masks/ (+ classes.json); set, it replaces the benchmark
    c.data.validation = "0.2" if folder else ""  # folder: a fraction of the files, "name,name", or "" for none
    c.data.slice_axes = "xy"  # folder volumes: planes trained on, a comma list of xy, xz, yz
    c.data.ignore_label = -1  # folder without classes.json: the mask value of unlabelled pixels (-1: none)
    c.data.noise_blur = -1  # Gaussian noise and blur: -1 = the benchmark's recipe (own data: off), 0 off, 1 on
    # the host window fed to the device augmentation: 0 = whole planes (up to max_canvas px a side; larger ones
    # give a random window), so RandomResizedCrop samples the whole image as the reference's does
    c.data.loader_crop = 0
    c.data.max_canvas = 2048
    c.data.nonempty_crops = -1  # crop-non-empty-mask p 0.8: -1 = the benchmark's recipe, 0 off, 1 on
    c.data.worker_count = 0
    c.data.norms = ()  # () = from the init: checkpoint norms, ImageNet's, or the training split's statistics

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "resnet50"  # a name of cemjax.models.registry
    c.model.num_classes = 0 if folder else recipe.num_classes  # 0: from the folder's classes
    c.model.compute_dtype = "float32"

    c.batch_size = recipe.batch_size
    c.crop = recipe.crop
    c.iterations = recipe.iterations

    c.optim = ml_collections.ConfigDict()
    c.optim.max_lr = 0.003
    c.optim.weight_decay = 0.1
    c.optim.pct_start = 0.3
    c.optim.div_factor = 25.0
    c.optim.final_div_factor = 1e4

    c.loss = ml_collections.ConfigDict()
    c.loss.class_weights = tuple(recipe.class_weights)

    c.eval = ml_collections.ConfigDict()
    c.eval.mode = evaluation.mode if evaluation else "auto"  # folder: auto = 2d for images, stack for volumes
    c.eval.classes = tuple(evaluation.classes) if evaluation else (1,)
    c.eval.mask_to_truth = evaluation.mask_to_truth if evaluation else False
    c.eval.instance_match = evaluation.instance_match if evaluation else False
    c.eval.every = 0  # folder validation every N steps (0: every iterations / 10)
    c.eval.patience = 0  # early stopping after N validations without a better IoU (0: off)
    c.eval.keep_best = True  # model/ holds the best-validated weights (folder runs with validation)
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
        c.model.encoder = "resnet18"
        c.batch_size = 4 if small else 8
        c.crop = 64 if small else 128
        c.data.loader_crop = 0 if small else 256  # demo: a 256 window of the 512² images keeps the demo fast
        c.data.nonempty_crops = 1  # few steps: most random crops of sparse organelles hold no foreground
        c.iterations = 6 if small else 130
        c.checkpoint_every = 3 if small else 60
        c.log_every = 2 if small else 20
        c.eval.batch_size = 4
        c.eval.overlays = 1
        c.async_checkpointing = not small
    elif c.variant != "paper":
        raise ValueError(f"unknown variant {c.variant!r}: use {', '.join(VARIANTS)}")
    return c
