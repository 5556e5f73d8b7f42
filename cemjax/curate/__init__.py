"""Curation of raw EM into CEM-style 224×224 patches (docs/method.md §1): sections → patches → dHash dedup →
quality filter, as an Apache Beam pipeline (`cemjax.curate.pipeline.run`)."""
