"""The segmentation benchmarks: one `BenchmarkSpec` per benchmark holds everything about it.

- `layout`: where its files lie under the benchmarks root (as the reference's setup scripts leave them), 2D
  images or 3D volumes, the splits, and the axes 3D volumes are sliced along for 2D training;
- `recipe`: the paper's fine-tuning numbers (docs/method.md §4): iterations, crop, batch, model
  outputs, class weights, and the extra augmentations;
- `evaluation`: how the paper scores it (mode, classes, masking, instance matching; All Mitochondria: the
  source benchmarks' test sets, each in its own mode).

The TFDS builder (`cem_benchmarks/<name>`), the fine-tuning config (`cemjax.configs.finetune`), the grid and the
evaluation all read this table; a new benchmark is one `register(BenchmarkSpec(...))` (before the TFDS builders
are imported, e.g. in the module that defines it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EVAL_MODES = ("2d", "stack", "orthoplane", "mixed")


@dataclass(frozen=True)
class Layout:
    """dir: folder under the benchmarks root; kind: "2d" (images) or "3d" (volumes); splits: (TFDS split,
    folder) pairs; slice_axes: SimpleITK axes 3D volumes are cut along for training (2: xy, 1: xz, 0: yz)."""

    dir: str
    kind: str
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    slice_axes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning: `iterations` steps of `batch_size` random `crop` × `crop` crops; `num_classes` model outputs
    (1: binary, BCE; more: weighted cross-entropy with `class_weights`); `noise_blur`: Gaussian noise and blur;
    `nonempty`: crops hold foreground with p 0.8."""

    iterations: int
    crop: int
    batch_size: int
    num_classes: int = 1
    class_weights: tuple[float, ...] = ()
    noise_blur: bool = False
    nonempty: bool = False


@dataclass(frozen=True)
class Evaluation:
    """mode: "2d", "stack", "orthoplane" or "mixed" (`sources`: (benchmark, its mitochondria label) pairs, each
    test set scored in its own mode); classes: the model's classes scored; mask_to_truth: predictions outside
    labelled voxels are ignored; instance_match: only predicted objects touching a labelled one count."""

    mode: str
    classes: tuple[int, ...] = (1,)
    mask_to_truth: bool = False
    instance_match: bool = False
    sources: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark. `classes`: the names of its mask values (index = value)."""

    name: str
    description: str
    classes: tuple[str, ...]
    layout: Layout
    recipe: Recipe
    evaluation: Evaluation = field(default_factory=lambda: Evaluation("2d"))

    def __post_init__(self):
        if self.layout.kind not in ("2d", "3d"):
            raise ValueError(f"benchmark {self.name}: layout.kind must be '2d' or '3d', got {self.layout.kind!r}")
        if self.evaluation.mode not in EVAL_MODES:
            raise ValueError(f"benchmark {self.name}: evaluation.mode must be one of {EVAL_MODES}")
        weights = self.recipe.class_weights
        if weights and len(weights) != self.recipe.num_classes:
            raise ValueError(f"benchmark {self.name}: {len(weights)} class weights for {self.recipe.num_classes}")


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register(spec: BenchmarkSpec) -> BenchmarkSpec:
    BENCHMARKS[spec.name] = spec
    return spec


def get(name: str) -> BenchmarkSpec:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


_MITO = ("background", "mito")
_TRAIN_VALID_TEST = (("train", "train"), ("validation", "valid"), ("test", "test"))


def _perez(organelle: str, label: str) -> BenchmarkSpec:
    return BenchmarkSpec(
        f"perez_{organelle}", f"Perez et al. 2014 {label} (2D; test images partly labelled).",
        ("background", organelle), Layout(f"perez/{organelle}", "2d"),
        Recipe(2_500, 480, 16), Evaluation("2d", instance_match=True),
    )  # fmt: skip


for _spec in (
    BenchmarkSpec("lucchi_pp", "Lucchi++ mitochondria (2D).", _MITO, Layout("lucchi_pp", "2d"),
                  Recipe(10_000, 512, 16), Evaluation("2d")),
    BenchmarkSpec("kasthuri_pp", "Kasthuri++ mitochondria (2D).", _MITO, Layout("kasthuri_pp", "2d"),
                  Recipe(10_000, 512, 16, nonempty=True), Evaluation("2d")),
    _perez("mito", "mitochondria"),
    _perez("lyso", "lysosomes"),
    _perez("nuclei", "nuclei"),
    _perez("nucleoli", "nucleoli"),
    BenchmarkSpec(
        "guay", "Guay et al. 2021 platelets, 7 classes (3D volumes).",
        ("back", "cell", "mito", "can_chan", "alpha_gran", "dense_gran", "dense_gran_core"),
        Layout("guay", "3d", _TRAIN_VALID_TEST, slice_axes=(2,)),
        Recipe(1_000, 512, 16, num_classes=7, class_weights=(0.1, 0.1, 1.0, 1.0, 0.1, 3.0, 3.0), noise_blur=True),
        Evaluation("stack", classes=(2, 3, 4, 5, 6), mask_to_truth=True),
    ),
    BenchmarkSpec(
        "urocell", "UroCell lysosomes (1) and mitochondria (2) (3D volumes).", ("back", "lyso", "mito"),
        Layout("urocell", "3d", slice_axes=(0, 1, 2)), Recipe(2_500, 224, 16, num_classes=3,
        class_weights=(0.1, 1.0, 1.0)), Evaluation("orthoplane", classes=(1, 2)),
    ),
    BenchmarkSpec(
        "cremi", "CREMI synaptic clefts (3D volumes; A, B train, C test).", ("background", "synaptic_cleft"),
        Layout("cremi", "3d", slice_axes=(2,)), Recipe(5_000, 512, 16, nonempty=True), Evaluation("stack"),
    ),
    BenchmarkSpec(
        "all_mito", "All Mitochondria: 256×256 training tiles from Perez-mito, Lucchi++, Kasthuri++, UroCell, Guay.",
        _MITO, Layout("all_mito", "2d", (("train", "train"),)), Recipe(10_000, 256, 32, noise_blur=True),
        Evaluation("mixed", sources=(("perez_mito", 1), ("lucchi_pp", 1), ("kasthuri_pp", 1), ("urocell", 2),
                                     ("guay", 2))),
    ),
):  # fmt: skip
    register(_spec)
