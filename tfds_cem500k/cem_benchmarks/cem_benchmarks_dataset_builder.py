"""TFDS builder for the CEM500K segmentation benchmarks, one config per benchmark of `cemjax.benchmarks`.

2D configs (lucchi_pp, kasthuri_pp, perez_*, all_mito) hold examples {image uint8 [H, W, 1], mask uint8
[H, W, 1] (class index per pixel), name}; 3D configs (guay, urocell, cremi) hold volumes {image uint8
[D, H, W], labels uint8 [D, H, W], spacing float32 [3] (z, y, x nm; 0 where the file does not say), name}.
Class names, split folders and descriptions: the benchmark registry, `cemjax.benchmarks`.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from cemjax import benchmarks
from cemjax.common.progress import Progress
from cemjax.data import benchmark_files as B
from tfds_cem500k.common import dataset_info

_DESCRIPTION = """Segmentation benchmarks of CEM500K (Conrad & Narayan, eLife 2021): Lucchi++, Kasthuri++, Perez
(mitochondria, lysosomes, nuclei, nucleoli), Guay (platelets, 7 classes), UroCell (lysosomes, mitochondria), CREMI
(synaptic clefts) and All Mitochondria (256×256 tiles of five mitochondria training sets)."""


class Builder(tfds.core.GeneratorBasedBuilder):
    """The benchmarks, read from the folder the reference's setup scripts produce. Built with tfrecord (for
    `tfds.load`) plus array_record (for `tfds.data_source` and grain) by `cemjax.data.build.build_benchmark`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ten configs in the reference's public layouts."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=s.name, description=s.description)
                       for s in benchmarks.BENCHMARKS.values()]  # fmt: skip
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Point --manual_dir at the benchmarks root prepared by the reference's
    scripts (github.com/volume-em/cem-dataset, evaluation/setup_benchmarks): `python setup_data.py ROOT`
    downloads every benchmark and leaves lucchi_pp/, kasthuri_pp/, perez/{mito,lyso,nuclei,nucleoli}/ with
    {train,test}/{images,masks}/, and guay/, urocell/, cremi/ with 3d/<split>/{images,masks}/ volumes (.nrrd, or
    UroCell's .nii.gz). all_mito is cut from the others here (it does not read ROOT/all_mito).
    Then: python -m cemjax.data.build cem_benchmarks/lucchi_pp --manual_dir ROOT --data_dir ~/tensorflow_datasets
    or:   tfds build cem_benchmarks/lucchi_pp --imports tfds_cem500k --manual_dir ROOT
    A synthetic stand-in in the same layout: python -m cemjax.synthetic --out DIR (benchmarks under DIR)."""

    @property
    def _spec(self) -> benchmarks.BenchmarkSpec:
        return benchmarks.get(self.builder_config.name)

    def _info(self) -> tfds.core.DatasetInfo:
        if self._spec.layout.kind == "2d":
            features = {
                "image": tfds.features.Image(shape=(None, None, 1), dtype=np.uint8, encoding_format="png"),
                "mask": tfds.features.Image(shape=(None, None, 1), dtype=np.uint8, encoding_format="png"),
                "name": tfds.features.Text(),
            }
        else:
            volume = lambda: tfds.features.Tensor(shape=(None, None, None), dtype=np.uint8, encoding="zlib")  # noqa: E731
            features = {
                "image": volume(),
                "labels": volume(),
                "spacing": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                "name": tfds.features.Text(),
            }
        return dataset_info(self, _DESCRIPTION, features, "https://github.com/volume-em/cem-dataset")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = dl_manager.manual_dir
        name = self.builder_config.name
        if not root.exists():
            raise FileNotFoundError(
                f"benchmarks manual dir {root} does not exist; prepare it with the reference's setup_data.py and "
                f"run: tfds build cem_benchmarks/{name} --imports tfds_cem500k --manual_dir {root}"
            )
        if self._spec.evaluation.sources:  # all_mito: tiles of the sources' training sets
            for source, _ in self._spec.evaluation.sources:  # check every source before the long tiling pass
                B.pairs(root, source, "train")
            return {"train": self._generate_examples(root, None, "train")}
        # B.pairs raises on a missing split before any example is written.
        splits = self._spec.layout.splits
        return {split: self._generate_examples(root, B.pairs(root, name, folder), split) for split, folder in splits}

    def _generate_examples(self, root, pairs, split):
        """(key, example) of one split: all_mito tiles when pairs is None, else one per (image, mask) pair."""
        if pairs is None:
            return self._all_mito(root)
        progress = Progress(len(pairs), label=f"cem_benchmarks/{self.builder_config.name} {split}", unit="files")
        return (self._volumes if self._spec.layout.kind == "3d" else self._images)(pairs, progress)

    def _images(self, pairs, progress: Progress):
        name = self.builder_config.name
        for k, (image_path, mask_path) in enumerate(pairs):
            image, mask, _ = B.read_pair(image_path, mask_path, name, ndim=2)
            png = {"image": Image.fromarray(image), "mask": Image.fromarray(mask)}
            yield image_path.name, {**png, "name": image_path.name}
            progress.update(k + 1)

    def _volumes(self, pairs, progress: Progress):
        name = self.builder_config.name
        for k, (image_path, mask_path) in enumerate(pairs):
            image, labels, spacing = B.read_pair(image_path, mask_path, name, ndim=3)
            spacing = np.asarray(spacing if spacing else (0.0, 0.0, 0.0), np.float32)
            yield image_path.name, {"image": image, "labels": labels, "spacing": spacing, "name": image_path.name}
            progress.update(k + 1)

    def _all_mito(self, root):
        for name, image, mask in B.all_mito_tiles(root):
            yield name, {"image": Image.fromarray(image), "mask": Image.fromarray(mask), "name": name}
