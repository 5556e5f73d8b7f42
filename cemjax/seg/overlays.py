"""Three-panel PNG overlays (image | truth | prediction) for eyeballing segmentation results.

Classes 1 .. N are drawn as semi-transparent colours (matplotlib's tab10 cycle) over the gray image; class 0 is
left uncoloured. Uses matplotlib's object API with the Agg canvas (no pyplot global state, no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cemjax.common.files import atomic_write
from cemjax.common.pictures import label_colours, overlay_labels

ALPHA = 0.45
PANEL_INCHES = 4.0


def write_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
    dpi: int = 100,
) -> str:
    """Write a PNG with panels image | truth | prediction and return its path.

    image: uint8 [H, W]; truth, pred: integer label maps [H, W] (0 = background); class_names: names of classes
    0 .. N-1 (index 0 is the background, shown without colour; the others appear in the legend). title: figure
    title (default: the file name). Written atomically (`cemjax.common.files`).
    """
    image, truth, pred = np.asarray(image), np.asarray(truth), np.asarray(pred)
    if image.ndim != 2 or truth.shape != image.shape or pred.shape != image.shape:
        raise ValueError(f"image {image.shape}, truth {truth.shape}, pred {pred.shape} must be equal [H, W]")
    path = os.fspath(path)
    num_classes = max(len(class_names), int(truth.max(initial=0)) + 1, int(pred.max(initial=0)) + 1)
    height, width = image.shape
    panel_h = PANEL_INCHES * height / max(height, width)
    panel_w = PANEL_INCHES * width / max(height, width)
    fig = Figure(figsize=(3 * panel_w, panel_h + 0.9), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    panels = (
        ("image", np.repeat(image[..., None], 3, axis=-1)),
        ("truth", overlay_labels(image, truth, ALPHA)),
        ("prediction", overlay_labels(image, pred, ALPHA)),
    )
    for ax, (name, rgb) in zip(axes, panels, strict=True):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    colours = label_colours(num_classes) / 255.0
    names = list(class_names) + [f"class {k}" for k in range(len(class_names), num_classes)]
    handles = [Patch(color=colours[k], label=names[k]) for k in range(1, num_classes)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(title if title is not None else os.path.basename(path), fontsize=10)
    fig.subplots_adjust(
        left=0.01, right=0.99, top=1 - 0.55 / (panel_h + 0.9), bottom=0.35 / (panel_h + 0.9), wspace=0.04
    )

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    return path
