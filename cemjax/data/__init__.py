"""Data: TFDS builds, grain pipelines (uint8 on the host) and on-device augmentation.

- :func:`cemjax.data.build.build_cem500k` / ``build_benchmark``: build once, read by ``tfds.load`` and grain.
- :func:`cemjax.data.pretrain.make_pretrain_loader`: uint8 [B, 224, 224, 1] batches for MoCoV2.
- :func:`cemjax.data.augment.mocov2_views`: two normalised views on the accelerator.
"""
