"""What the cemjax TFDS builders share: the citation and the DatasetInfo they all declare."""

from __future__ import annotations

import tensorflow_datasets as tfds

CITATION = """@article{conrad2021cem500k,
  title={CEM500K, a large-scale heterogeneous unlabeled cellular electron microscopy image dataset for deep
         learning}, author={Conrad, Ryan and Narayan, Kedar}, journal={eLife}, volume={10}, pages={e65894},
  year={2021}}"""

BUILT_FORMATS = ["array_record", "tfrecord"]  # what `python -m cemjax.data.build` writes side by side


def dataset_info(builder: tfds.core.GeneratorBasedBuilder, description: str, features: dict, homepage: str):
    """The builder's DatasetInfo: `features` (a dict of TFDS features), no supervised keys, the paper's citation,
    and the file formats a cemjax build holds."""
    return builder.dataset_info_from_configs(
        description=description,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        homepage=homepage,
        citation=CITATION,
        alternative_file_formats=BUILT_FORMATS,
    )
