"""Convert weights between cemjax (Flax) and PyTorch.

Export a cemjax model directory to PyTorch (torchvision ResNet or smp Unet state_dict; `.pth` or `.safetensors`):
  python experiments/export_torch.py --model=DIR --out=resnet50.pth [--verify]
Export a pretraining run (latest or --step) to the reference `.pth.tar`, torchvision weights and safetensors:
  python experiments/export_torch.py --checkpoint=runs/mocov2 --out=runs/mocov2/export_final
Import released PyTorch weights (torchvision, reference MoCo `.pth.tar`, CEM1.5M SwAV, smp Unet) into a model dir:
  python experiments/export_torch.py --import_weights=cem500k_mocov2_resnet50.pth.tar --kind=resnet --depth=50 \
      --head=none --out=DIR
"""

from __future__ import annotations

import sys

from absl import app, flags

from cemjax.convert import export_resnet, export_unet, import_resnet, import_unet
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.models.spec import ModelSpec, build_model

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "cemjax model directory to export (written by save_model / training).")
flags.DEFINE_string("checkpoint", None, "Pretraining workdir (experiments/pretrain.py) to export.")
flags.DEFINE_integer("step", None, "With --checkpoint: the step to export (default: the latest).")
flags.DEFINE_string("import_weights", None, "PyTorch weight file to import into a new cemjax model directory.")
flags.DEFINE_string("out", None, "Output: .pth/.safetensors when exporting, a directory when importing.", required=True)
flags.DEFINE_bool("verify", False, "After export, load strictly into torchvision/smp and compare outputs.")
flags.DEFINE_enum("kind", "resnet", ["resnet", "unet"], "Import: model kind.")
flags.DEFINE_integer("depth", 50, "Import: ResNet depth (18, 34, 50).")
flags.DEFINE_integer("in_channels", 1, "Import: input channels (1 for EM, 3 for ImageNet).")
flags.DEFINE_integer("num_classes", 1000, "Import: classifier outputs (resnet with a head).")
flags.DEFINE_enum("head", "none", ["none", "linear", "mlp"], "Import: ResNet head to build.")
flags.DEFINE_integer("classes", 1, "Import: Unet output classes.")
flags.DEFINE_enum("stem", "error", ["error", "sum", "mean"], "Import: fold a 3-channel stem into 1 channel.")


def main(argv):
    del argv
    if sum(bool(x) for x in (FLAGS.model, FLAGS.import_weights, FLAGS.checkpoint)) != 1:
        sys.exit("give exactly one of --model / --checkpoint (export to PyTorch) or --import_weights (import)")
    if FLAGS.checkpoint:
        from cemjax.train.export import export_checkpoint

        for name, path in export_checkpoint(FLAGS.checkpoint, FLAGS.out, FLAGS.step).items():
            print(f"wrote {name}: {path}")
        return
    if FLAGS.model:
        model, spec = load_model(FLAGS.model)
        path = (export_unet if spec.kind == "unet" else export_resnet)(model, FLAGS.out)
        print(f"wrote {path} ({spec.kind}{spec.depth}, {spec.in_channels}-channel)")
        if FLAGS.verify:
            from cemjax.convert.verify import verify_in_torch

            print(f"strict load OK; max |flax - torch| = {verify_in_torch(model, spec, path):.2e}")
        return
    head = None if FLAGS.head == "none" else FLAGS.head
    spec = ModelSpec(FLAGS.kind, FLAGS.depth, FLAGS.in_channels, FLAGS.num_classes, head, FLAGS.classes)
    model = build_model(spec)
    report = (import_unet if spec.kind == "unet" else import_resnet)(model, FLAGS.import_weights, stem=FLAGS.stem)
    save_model(FLAGS.out, model, spec)
    print(f"imported {len(report.loaded)} tensors into {FLAGS.out}; ignored {len(report.ignored)}")
    for note in report.notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    app.run(main)
