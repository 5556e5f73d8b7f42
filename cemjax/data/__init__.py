"""Data: TFDS builds, grain pipelines (uint8 on the host) and on-device augmentation.

- :func:`cemjax.data.build.build_cem500k` / ``build_benchmark``: build once, read by ``tfds.load`` and grain.
- :func:`cemjax.data.pretrain.make_pretrain_loader`: uint8 [B, 224, 224, 1] batches for MoCoV2.
- :func:`cemjax.data.augment.mocov2_views`: two normalised views on the accelerator.
- :data:`cemjax.data.benchmarks.BENCHMARKS`: the segmentation benchmarks' layouts, classes and recipes.
- :func:`cemjax.data.finetune.make_finetune_loader`: uint8 crops + masks from a `cem_benchmarks` build.
- :func:`cemjax.data.augment_seg.seg_augment`: the fine-tuning augmentation of image and mask together.
"""
