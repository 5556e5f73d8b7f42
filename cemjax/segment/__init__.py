"""Segment whole volumes larger than memory with a fine-tuned model: blockwise with a halo, resumable, written
to OME-Zarr or TIFF (`cemjax.segment.run.segment`, `cemjax-segment`), optionally with instances and
morphometrics."""
