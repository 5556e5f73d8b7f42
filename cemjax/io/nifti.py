"""NIfTI volumes (.nii, .nii.gz; UroCell ships these), read whole, as numpy (z, y, x) with spacing in nm."""

from __future__ import annotations

import nibabel
import numpy as np

from cemjax.io.array import EMArray

_NIFTI_UNIT_NM = {"meter": 1e9, "mm": 1e6, "micron": 1e3, "nm": 1.0}


def open_nifti(path: str) -> EMArray:
    """NIfTI stores (x, y, z); the array is transposed to (z, y, x) as SimpleITK reads it. Decoded whole (a
    .nii.gz must be decompressed anyway). Spacing from the header's zooms and spatial unit, else None."""
    nii = nibabel.load(path)
    array = np.ascontiguousarray(np.asarray(nii.dataobj).T)
    unit = nii.header.get_xyzt_units()[0]
    zooms = [float(z) for z in nii.header.get_zooms()[:3]][::-1]
    scale = _NIFTI_UNIT_NM.get(unit)
    spacing = tuple(z * scale for z in zooms) if scale and len(zooms) == 3 and all(zooms) else None
    return EMArray(path, array, spacing, False)
