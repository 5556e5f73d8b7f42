"""Data: TFDS builds, grain pipelines (uint8 on the host) and on-device augmentation.

- `cemjax.data.build`: build `cem500k` and `cem_benchmarks/<name>` once, read by `tfds.load` and grain;
  `cemjax.data.built.data_source` opens a build (or names the command that makes it).
- `cemjax.data.pretrain`: patch batches per process for every pretraining method.
- `cemjax.data.augment`: self-supervised views on the accelerator (`ViewRecipe`, `make_views`).
- `cemjax.data.benchmark_files`: the benchmarks' files as the reference's setup scripts lay them out.
- `cemjax.data.finetune`: crops + masks from a `cem_benchmarks` build; `augment_seg`: their augmentation.
"""
