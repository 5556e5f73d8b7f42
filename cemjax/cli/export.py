"""Convert weights between cemjax (Flax) and PyTorch.

Export a cemjax model directory to PyTorch (torchvision ResNet or smp Unet state_dict; `.pth` or `.safetensors`):
  cemjax-export --model=DIR --out=resnet50.pth [--verify]
Export a pretraining workdir (any method; the latest step or --step): safetensors, torchvision, smp, the
method's own checkpoint layout (MoCoV2: the reference `.pth.tar`):
  cemjax-export --checkpoint=runs/mocov2 --out=runs/mocov2/export_final
Import released PyTorch weights (torchvision, reference MoCo `.pth.tar`, CEM1.5M SwAV, smp Unet) into a model dir:
  cemjax-export --import_weights=cem500k_mocov2_resnet50.pth.tar --kind=encoder --encoder=resnet50 --head=none \\
      --out=DIR
"""

from __future__ import annotations

from absl import flags

from cemjax import methods
from cemjax.cli.flags import quiet_library_logs, run_guarded
from cemjax.common.errors import ConfigError
from cemjax.convert import export_resnet, export_unet, import_resnet, import_unet
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.convert.verify import verify_in_torch
from cemjax.models.registry import ENCODERS
from cemjax.models.spec import ModelSpec, build_model

FLAGS = flags.FLAGS


def main(argv) -> int:
    del argv
    quiet_library_logs(FLAGS.verbose)
    if sum(bool(x) for x in (FLAGS.model, FLAGS.import_weights, FLAGS.checkpoint)) != 1:
        raise ConfigError("give exactly one of --model / --checkpoint (export to PyTorch) or --import_weights")
    if FLAGS.checkpoint:
        for name, path in methods.export(FLAGS.checkpoint, FLAGS.out, FLAGS.step).items():
            print(f"wrote {name}: {path}")
        return 0
    if FLAGS.model:
        model, spec = load_model(FLAGS.model)
        path = (export_unet if spec.kind == "unet" else export_resnet)(model, FLAGS.out)
        print(f"wrote {path} ({spec.kind} {spec.encoder}, {spec.in_channels}-channel)")
        if FLAGS.verify:
            print(f"strict load OK; max |flax - torch| = {verify_in_torch(model, spec, path):.2e}")
        return 0
    head = None if FLAGS.head == "none" else FLAGS.head
    spec = ModelSpec(kind=FLAGS.kind, encoder=FLAGS.encoder, in_channels=FLAGS.in_channels,
                     num_classes=FLAGS.num_classes, head=head, classes=FLAGS.classes)  # fmt: skip
    model = build_model(spec)
    report = (import_unet if spec.kind == "unet" else import_resnet)(model, FLAGS.import_weights, stem=FLAGS.stem)
    save_model(FLAGS.out, model, spec)
    print(f"imported {len(report.loaded)} tensors into {FLAGS.out}; ignored {len(report.ignored)}")
    for note in report.notes:
        print(f"  note: {note}")
    return 0


def run() -> None:
    flags.DEFINE_string("model", None, "cemjax model directory to export (written by save_model / training).")
    flags.DEFINE_string("checkpoint", None, "Pretraining workdir to export (any method).")
    flags.DEFINE_integer("step", None, "With --checkpoint: the step to export (default: the latest).")
    flags.DEFINE_string("import_weights", None, "PyTorch weight file to import into a new cemjax model directory.")
    flags.DEFINE_string("out", None, "Output: .pth/.safetensors when exporting, a directory otherwise.", required=True)
    flags.DEFINE_bool("verify", False, "After export, load strictly into torchvision/smp and compare outputs.")
    flags.DEFINE_enum("kind", "encoder", ["encoder", "unet"], "Import: model kind.")
    flags.DEFINE_enum("encoder", "resnet50", sorted(ENCODERS), "Import: the encoder.")
    flags.DEFINE_integer("in_channels", 1, "Import: input channels (1 for EM, 3 for ImageNet).")
    flags.DEFINE_integer("num_classes", 1000, "Import: classifier outputs (an encoder with a head).")
    flags.DEFINE_enum("head", "none", ["none", "linear", "mlp"], "Import: the encoder's head.")
    flags.DEFINE_integer("classes", 1, "Import: Unet output classes.")
    flags.DEFINE_enum("stem", "error", ["error", "sum", "mean"], "Import: fold a 3-channel stem into 1 channel.")
    flags.DEFINE_bool("verbose", False, "Show library INFO logs and the traceback of expected errors.")
    run_guarded(main)


if __name__ == "__main__":
    run()
