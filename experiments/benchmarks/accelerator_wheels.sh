#!/usr/bin/env bash
# Fetch into .whl/ (git-ignored through .git/info/exclude, never committed) the wheels that accelerator.py needs
# on the GPU machine and that its image lacks: segmentation-models-pytorch, the fine-tuning row's baseline (pure
# Python; its requirements, huggingface-hub, numpy, pillow, safetensors, timm, torch, torchvision and tqdm, are
# installed there). The machine has Python 3.12 on x86-64 and no network. Run from anywhere in the repository:
#
#   PY=.venv/bin/python experiments/benchmarks/accelerator_wheels.sh
#
# then run accelerator.py there with carry=[".whl"] (the command is in accelerator.py's docstring).
set -euo pipefail
PY="${PY:-python3}"
cd "$(git rev-parse --show-toplevel)"
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
rm -rf .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .whl segmentation-models-pytorch==0.6.0
ls -l .whl
git check-ignore -q .whl/ || { echo "error: .whl/ is not ignored by git" >&2; exit 1; }
