"""Three-panel PNG overlays (image | truth | prediction) for eyeballing segmentation results.

Classes 1 .. N are drawn as semi-transparent colours (matplotlib's tab10 cycle) over the gray image; class 0 is
left uncoloured. Uses matplotlib's object API with the Agg canvas (no pyplot global state, no display needed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

ALPHA = 0.45
PANEL_INCHES = 4.0


def class_colours(num_classes: int) -> np.ndarray:
    """RGB colours float32 [num_classes, 3] in [0, 1]; row 0 (background) is unused, rows 1.. cycle tab10."""
    tab10 = [to_rgb(f"C{i}") for i in range(10)]
    return np.array([(0.0, 0.0, 0.0)] + [tab10[(k - 1) % 10] for k in range(1, num_classes)], np.float32)


def blend(image: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float = ALPHA) -> np.ndarray:
    """Colour labels > 0 over a gray image. image uint8 [H, W], labels int [H, W] → uint8 RGB [H, W, 3]."""
    gray = np.repeat(np.asarray(image, np.float32)[..., None] / 255.0, 3, axis=-1)
    labels = np.asarray(labels)
    colours = class_colours(max(num_classes, int(labels.max(initial=0)) + 1))
    fg = labels > 0
    gray[fg] = (1 - alpha) * gray[fg] + alpha * colours[labels[fg]]
    return np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)


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
    title (default: the file name). The file is written to a temporary name in the same folder and moved into
    place with os.replace, so readers never see a partial PNG.
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
        ("truth", blend(image, truth, num_classes)),
        ("prediction", blend(image, pred, num_classes)),
    )
    for ax, (name, rgb) in zip(axes, panels, strict=True):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    colours = class_colours(num_classes)
    names = list(class_names) + [f"class {k}" for k in range(len(class_names), num_classes)]
    handles = [Patch(color=colours[k], label=names[k]) for k in range(1, num_classes)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(title if title is not None else os.path.basename(path), fontsize=10)
    fig.subplots_adjust(
        left=0.01, right=0.99, top=1 - 0.55 / (panel_h + 0.9), bottom=0.35 / (panel_h + 0.9), wspace=0.04
    )

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".overlay-", suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
