"""Procedural cellular EM world: the offline default of the demo and the fixture of every test.

Deterministic from a seed (same seed → identical arrays and files). Scenes are built in nm; images and
volumes come out as uint8/uint16/float32, TEM contrast or inverted (FIB-SEM detector view), with uint8
labels over :data:`CLASS_NAMES`. Writers cover tif/png/mrc/nrrd/h5/zarr with voxel spacing, the reference's
benchmark layouts, a mixed raw collection with a JSON sidecar, junk for the quality filter, contact sheets.
CLI: ``python -m cemjax.synthetic --out DIR [--seed N] [--size small|demo]``.
"""

from cemjax.synthetic.benchmarks import (
    BENCHMARK_DIRS,
    BENCHMARKS_2D,
    BENCHMARKS_3D,
    GUAY_CLASS_NAMES,
    write_benchmark_2d,
    write_benchmark_3d,
    write_benchmarks,
)
from cemjax.synthetic.classes import CLASS_COLORS, CLASS_NAMES
from cemjax.synthetic.collection import SIDECAR, SOURCES, write_raw_collection
from cemjax.synthetic.imaging import OUTPUT_DTYPES, Imaging, invert_contrast, quantize, simulate_signal
from cemjax.synthetic.junk import JUNK_KINDS, add_zero_padding, make_junk_image, make_quality_patches
from cemjax.synthetic.samples import EMSample, make_em_image, make_em_volume
from cemjax.synthetic.scene import STYLES, Scene, SceneStyle, make_scene
from cemjax.synthetic.world import write_sheets, write_world
from cemjax.synthetic.writers import (
    ARRAY_FORMATS,
    write_array,
    write_h5,
    write_mrc,
    write_nrrd,
    write_png,
    write_tif,
    write_zarr,
)

__all__ = [
    "ARRAY_FORMATS",
    "BENCHMARK_DIRS",
    "BENCHMARKS_2D",
    "BENCHMARKS_3D",
    "CLASS_COLORS",
    "CLASS_NAMES",
    "EMSample",
    "GUAY_CLASS_NAMES",
    "Imaging",
    "JUNK_KINDS",
    "OUTPUT_DTYPES",
    "SIDECAR",
    "SOURCES",
    "STYLES",
    "Scene",
    "SceneStyle",
    "add_zero_padding",
    "invert_contrast",
    "make_em_image",
    "make_em_volume",
    "make_junk_image",
    "make_quality_patches",
    "make_scene",
    "quantize",
    "simulate_signal",
    "write_array",
    "write_benchmark_2d",
    "write_benchmark_3d",
    "write_benchmarks",
    "write_h5",
    "write_mrc",
    "write_nrrd",
    "write_png",
    "write_raw_collection",
    "write_sheets",
    "write_tif",
    "write_world",
    "write_zarr",
]
