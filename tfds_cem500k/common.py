"""What the cemjax TFDS builders share: the citation and the DatasetInfo they all declare."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

CITATION = """@article{conrad2021cem500k,
  title={CEM500K, a large-scale heterogeneous unlabeled cellular electron microscopy image dataset for deep
         learning}, author={Conrad, Ryan and Narayan, Kedar}, journal={eLife}, volume={10}, pages={e65894},
  year={2021}}"""

FILE_FORMATS = ("array_record", "tfrecord")  # what `python -m cemjax.data.build` writes side by side


def formats_on_disk(version_dir: str | Path) -> list[str]:
    """The file formats whose shards are in a build's version folder ([] before a build)."""
    folder = Path(version_dir)
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return [fmt for fmt in FILE_FORMATS if any(f".{fmt}-" in name for name in names)]


def dataset_info(builder: tfds.core.GeneratorBasedBuilder, description: str, features: dict, homepage: str):
    """The builder's DatasetInfo: `features` (a dict of TFDS features), no supervised keys, the paper's citation,
    and as alternative file formats those actually written in its data_dir (a plain `tfds build` writes one
    format; declaring the other would make a reader report examples it cannot read)."""
    return builder.dataset_info_from_configs(
        description=description,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        homepage=homepage,
        citation=CITATION,
        alternative_file_formats=formats_on_disk(builder.data_dir),
    )
