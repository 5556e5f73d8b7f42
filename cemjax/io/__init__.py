"""Read EM files (tif, png, jpg, mrc, nrrd, h5, zarr, NIfTI) lazily and convert them to uint8 (docs/method.md §1.1)."""

from cemjax.io.convert import INTENSITY_RULES, Scaling, Stats, choose_scaling, rgb_to_gray, scan_stats, to_uint8
from cemjax.io.formats import SUFFIXES, EMArray, EMReadError, open_em
from cemjax.io.planes import iter_slabs, read_plane_block, volume_stats

__all__ = [
    "INTENSITY_RULES",
    "Scaling",
    "choose_scaling",
    "SUFFIXES",
    "EMArray",
    "EMReadError",
    "Stats",
    "iter_slabs",
    "open_em",
    "read_plane_block",
    "rgb_to_gray",
    "scan_stats",
    "to_uint8",
    "volume_stats",
]
