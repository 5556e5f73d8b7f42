"""Train the curation's quality classifier (docs/method.md §1).

    cemjax-train-quality --data labelled/ --output quality_model/ [--encoder resnet34] [--size 224]
        [--epochs 20] [--init resnet34_torchvision.pth --freeze-until layer4]
    cemjax-train-quality --synthetic 2000 --data labelled/ --output quality_model/   # demo data

--data is a folder with good/ and bad/ sub-folders of 2D images, or a CSV of path,label (1/good = keep).
--synthetic N first writes N synthetic labelled patches (`cemjax.synthetic.make_quality_patches`) there.
Prints the validation AUROC and accuracy; the model directory is what `cemjax-curate --model-dir` and
`cemjax-apply-quality` read.
"""

from __future__ import annotations

import argparse
import json
import sys

from cemjax.common.errors import ArgumentParser, guarded
from cemjax.curate.classifier import TrainConfig, train, write_labelled_folders
from cemjax.models.registry import ENCODERS
from cemjax.synthetic import make_quality_patches


@guarded
def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="good/ + bad/ folder, or CSV of path,label")
    ap.add_argument("--output", required=True, help="model directory to write")
    ap.add_argument("--encoder", default="resnet34", choices=sorted(ENCODERS))
    ap.add_argument("--size", type=int, default=224, help="input side in px (patches are resized)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--threshold", type=float, default=0.5, help="informative when P > threshold")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="torchvision / MoCo weights to start from")
    ap.add_argument("--freeze-until", default=None, help="first trainable stage (reference: layer4)")
    ap.add_argument("--synthetic", type=int, default=0, help="first write N synthetic labelled patches to --data")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.synthetic:
        patches, informative, _ = make_quality_patches(a.synthetic, seed=a.seed, size=a.size)
        write_labelled_folders(a.data, patches, informative)
    cfg = TrainConfig(
        a.data, a.output, a.encoder, a.size, a.epochs, a.batch, a.lr, a.val_fraction, a.seed, a.threshold, a.init,
        a.freeze_until, progress=not a.quiet,
    )  # fmt: skip
    m = train(cfg)
    print(json.dumps({k: m[k] for k in ("val_auroc", "val_accuracy", "n_train", "n_val", "seconds")}))
    print(f"validation AUROC {m['val_auroc']:.4f}, accuracy {m['val_accuracy']:.4f}; model in {a.output}")
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
