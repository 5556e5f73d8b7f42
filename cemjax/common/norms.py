"""Normalisation constants: (mean, std) of [0, 1] pixels, per input channel where there are several.

See docs/method.md §2: the CEM500K statistics of the paper-era release and of the v2 (CEM1.5M)
code, and torchvision's ImageNet statistics for ImageNet-initialised encoders.
"""

CEM500K_NORMS = (0.58331613, 0.09966064)
CEM15M_NORMS = (0.57287007, 0.12740536)
CEM15M_SWAV_NORMS = (0.575710, 0.127650)  # the v2 SwAV config's own (swav_config.yaml)
IMAGENET_NORMS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
