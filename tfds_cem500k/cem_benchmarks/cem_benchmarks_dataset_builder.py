"""TFDS builder for the CEM500K segmentation benchmarks (REFERENCE §4), one config per benchmark.

2D configs (lucchi_pp, kasthuri_pp, perez_*, all_mito) hold examples {image uint8 [H, W, 1], mask uint8
[H, W, 1] (class index per pixel), name}; 3D configs (guay, urocell, cremi) hold volumes {image uint8
[D, H, W], labels uint8 [D, H, W], spacing float32 [3] (z, y, x nm; 0 where the file does not say), name}.
Class names and split folders: :data:`cemjax.data.benchmarks.BENCHMARKS`.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from cemjax.data import benchmarks as B

_DESCRIPTION = """Segmentation benchmarks of CEM500K (Conrad & Narayan, eLife 2021): Lucchi++, Kasthuri++, Perez
(mitochondria, lysosomes, nuclei, nucleoli), Guay (platelets, 7 classes), UroCell (lysosomes, mitochondria), CREMI
(synaptic clefts) and All Mitochondria (256×256 tiles of five mitochondria training sets)."""

_CITATION = """@article{conrad2021cem500k,
  title={CEM500K, a large-scale heterogeneous unlabeled cellular electron microscopy image dataset for deep
         learning}, author={Conrad, Ryan and Narayan, Kedar}, journal={eLife}, volume={10}, pages={e65894},
  year={2021}}"""

_CONFIG_NOTES = {
    "lucchi_pp": "Lucchi++ mitochondria (2D).",
    "kasthuri_pp": "Kasthuri++ mitochondria (2D).",
    "perez_mito": "Perez et al. 2014 mitochondria (2D; test images partly labelled).",
    "perez_lyso": "Perez et al. 2014 lysosomes (2D; test images partly labelled).",
    "perez_nuclei": "Perez et al. 2014 nuclei (2D; test images partly labelled).",
    "perez_nucleoli": "Perez et al. 2014 nucleoli (2D; test images partly labelled).",
    "guay": "Guay et al. 2021 platelets, 7 classes (3D volumes).",
    "urocell": "UroCell lysosomes (1) and mitochondria (2) (3D volumes).",
    "cremi": "CREMI synaptic clefts (3D volumes; A, B train, C test).",
    "all_mito": "All Mitochondria: 256×256 training tiles from Perez-mito, Lucchi++, Kasthuri++, UroCell, Guay.",
}


class Builder(tfds.core.GeneratorBasedBuilder):
    """The benchmarks, read from the folder the reference's setup scripts produce. Built with tfrecord (for
    `tfds.load`) plus array_record (for `tfds.data_source` and grain) by `cemjax.data.build.build_benchmark`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ten configs in the reference's public layouts."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name, description=_CONFIG_NOTES[name]) for name in B.BENCHMARKS]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Point --manual_dir at the benchmarks root prepared by the reference's
    scripts (github.com/volume-em/cem-dataset, evaluation/setup_benchmarks): `python setup_data.py ROOT`
    downloads every benchmark and leaves lucchi_pp/, kasthuri_pp/, perez/{mito,lyso,nuclei,nucleoli}/ with
    {train,test}/{images,masks}/, and guay/, urocell/, cremi/ with 3d/<split>/{images,masks}/ volumes (.nrrd, or
    UroCell's .nii.gz). all_mito is cut from the others here (it does not read ROOT/all_mito).
    Then: python -m cemjax.data.build cem_benchmarks/lucchi_pp --manual_dir ROOT --data_dir ~/tensorflow_datasets
    or:   tfds build cem_benchmarks/lucchi_pp --imports tfds_cem500k --manual_dir ROOT
    A synthetic stand-in in the same layout: python -m cemjax.synthetic --out DIR (benchmarks under DIR)."""

    @property
    def _spec(self) -> B.BenchmarkSpec:
        return B.BENCHMARKS[self.builder_config.name]

    def _info(self) -> tfds.core.DatasetInfo:
        if self._spec.kind == "2d":
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
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=None,
            homepage="https://github.com/volume-em/cem-dataset",
            citation=_CITATION,
            alternative_file_formats=["array_record", "tfrecord"],
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = dl_manager.manual_dir
        name = self.builder_config.name
        if not root.exists():
            raise FileNotFoundError(
                f"benchmarks manual dir {root} does not exist; prepare it with the reference's setup_data.py and "
                f"run: tfds build cem_benchmarks/{name} --imports tfds_cem500k --manual_dir {root}"
            )
        if name == "all_mito":
            for source, _ in B.ALL_MITO_SOURCES:  # check every source before the long tiling pass
                B.pairs(root, source, "train")
            return {"train": self._generate_examples(root, None)}
        # B.pairs raises on a missing split before any example is written.
        return {
            split: self._generate_examples(root, B.pairs(root, name, folder)) for split, folder in self._spec.splits
        }

    def _generate_examples(self, root, pairs):
        """(key, example) of one split: all_mito tiles when pairs is None, else one per (image, mask) pair."""
        if pairs is None:
            return self._all_mito(root)
        return self._volumes(pairs) if self._spec.kind == "3d" else self._images(pairs)

    def _images(self, pairs):
        from PIL import Image

        name = self.builder_config.name
        for image_path, mask_path in pairs:
            image, mask, _ = B.read_pair(image_path, mask_path, name, ndim=2)
            png = {"image": Image.fromarray(image), "mask": Image.fromarray(mask)}
            yield image_path.name, {**png, "name": image_path.name}

    def _volumes(self, pairs):
        name = self.builder_config.name
        for image_path, mask_path in pairs:
            image, labels, spacing = B.read_pair(image_path, mask_path, name, ndim=3)
            spacing = np.asarray(spacing if spacing else (0.0, 0.0, 0.0), np.float32)
            yield image_path.name, {"image": image, "labels": labels, "spacing": spacing, "name": image_path.name}

    def _all_mito(self, root):
        from PIL import Image

        for name, image, mask in B.all_mito_tiles(root):
            yield name, {"image": Image.fromarray(image), "mask": Image.fromarray(mask), "name": name}
