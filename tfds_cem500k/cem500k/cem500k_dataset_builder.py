"""TFDS builder for CEM500K: uint8 EM patches at their true size (224×224 but at image edges) with provenance,
from a manually supplied folder."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow_datasets as tfds

from cemjax.common.progress import Progress
from cemjax.data import patches as P
from tfds_cem500k.common import dataset_info

_DESCRIPTION = """CEM500K (Conrad & Narayan, eLife 2021;10:e65894): 481,434 heterogeneous, deduplicated and
filtered 8-bit grayscale cellular electron-microscopy patches (224×224, smaller at image edges) for
self-supervised pretraining, or any folder of patches curated the same way by `cemjax-curate`."""

log = logging.getLogger(__name__)


class Builder(tfds.core.GeneratorBasedBuilder):
    """CEM500K patches. Built with tfrecord (for `tfds.load`) plus array_record (for `tfds.data_source` and grain)
    by `cemjax.data.build.build_cem500k`; `tfds build` alone writes whichever `--file_format` it is given."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Patches with provenance (source, axis, slice, box).",
        "2.0.0": "Patches at their true size, as released (edge patches are smaller than 224 × 224).",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Point --manual_dir (or `manual_dir=`) at ONE of:
    1. the EMPIAR-10592 release, unpacked: a folder of uint8 TIFF patches, one sub-folder per source
       dataset (or a flat folder whose names carry `{source}-LOC-...`);
    2. the output folder of `cemjax-curate --input RAW --output CURATED` (it holds
       `patches/<source>/*.tiff` and `manifest.csv`).
    Then: python -m cemjax.data.build cem500k --manual_dir DIR --data_dir ~/tensorflow_datasets
    or:   tfds build cem500k --imports tfds_cem500k --manual_dir DIR --data_dir ~/tensorflow_datasets"""

    def _info(self) -> tfds.core.DatasetInfo:
        ints = {k: tfds.features.Scalar(np.int32) for k in ("slice", "y0", "y1", "x0", "x1")}
        features = {
            "image": tfds.features.Tensor(shape=(None, None, 1), dtype=np.uint8, encoding="bytes"),
            "name": tfds.features.Text(),
            "source": tfds.features.Text(),
            "axis": tfds.features.Text(),
            **ints,
        }
        return dataset_info(self, _DESCRIPTION, features, "https://www.ebi.ac.uk/empiar/EMPIAR-10592/")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual = dl_manager.manual_dir
        if not manual.exists():
            raise FileNotFoundError(
                f"CEM500K manual dir {manual} does not exist. Put the patches there, then run: tfds build cem500k "
                "--imports tfds_cem500k --manual_dir DIR (or python -m cemjax.data.build cem500k --manual_dir DIR)"
            )
        files = P.list_patches(manual)
        return {"train": self._generate_examples(files, P.patch_root(manual))}

    def _generate_examples(self, files, root):
        """One example per readable 8-bit patch; unreadable or non-8-bit files are skipped, counted and named."""
        skipped = []
        progress = Progress(len(files), label="cem500k", unit="patches")
        for k, path in enumerate(files):
            progress.update(k + 1)
            try:
                image = P.read_patch(path)
            except Exception as err:  # noqa: BLE001  (a corrupt TIFF or a wrong dtype: skip it and say so)
                skipped.append(str(path))
                reason = str(err).splitlines()[0][:200] if isinstance(err, P.PatchError) else type(err).__name__
                log.warning("cem500k: skipping %s (%s)", path, reason)
                continue
            key = str(path.relative_to(root))
            yield key, {"image": image, **P.provenance(path, root, image.shape)}
        if skipped:
            log.warning("cem500k: skipped %d of %d patch file(s), first: %s", len(skipped), len(files), skipped[0])
        if len(skipped) == len(files):
            raise P.PatchError(f"{root}: none of its {len(files)} patch file(s) could be read (first: {skipped[0]})")
