"""Contact sheets of patches: delegates to `cemjax.synthetic.sheets.write_contact_sheet` (helper-1's writer)."""

from __future__ import annotations

import numpy as np


def write_sheet(path: str, images: list[np.ndarray], titles: list[str], ncols: int = 8) -> str:
    """PNG grid of uint8 patches [H, W] with one title each; tiles shown at 112 px."""
    from cemjax.synthetic.sheets import write_contact_sheet

    return write_contact_sheet(path, images, titles=titles, ncols=ncols, tile_size=112)
