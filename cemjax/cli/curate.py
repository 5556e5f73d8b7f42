"""Curate raw EM into CEM-style patches (docs/method.md §1): cross-sections → patches → dHash dedup → filter.

    cemjax-curate --input raw/ mito=more.mrc --output curated/ [--spacing 30,8,8] \
        [--model-dir quality_model/] [-- --runner=FlinkRunner ...]

As the reference cuts them (`--rules paper`, its v0.1 that made CEM500K): tiles of max(1, round(L / 224)) per
side (Python's round), patches stored at their true size and hashed from a 224² copy, xz/yz planes only for
volumes with anisotropy ≤ 0.2, each 2D image deduplicated on its own. `--rules v2`: the reference's later code
(anisotropy 0.25, files named *video* in xy only, 2D patches not deduplicated). Where cemjax departs on purpose
(docs/method.md §6): the last plane of every axis is cut (the reference's loop skips it, a bug), and volumes
without voxel spacing are cut in xy only (give --spacing or a `<file>.json` sidecar {"spacing": [sz, sy, sx]}).
Intensities (`--intensity`, recorded per file in summary.csv): auto (default: uint8 as is; unsigned ints by
their effective bit depth, so 12-bit data in uint16 keeps its contrast; signed ints with negative values and
floats outside [0, 1] min–max over the file), reference (the reference's ÷ max(dtype)), dtype (the type's full
range), percentile (0.5–99.5 % stretch). Every cross-section left out, and any source that keeps no patch, is
said in a `note:` line. Inputs may be named: NAME=PATH names that input's source(s).

Everything after `--` goes to Apache Beam unchanged (default: DirectRunner, 2 worker processes).
Exit status: 0 = all inputs curated, 3 = done but some inputs were rejected (see rejected.csv); errors as
every cemjax job (`cemjax.common.errors`).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: dhash's small matmuls are slower threaded

import argparse  # noqa: E402
import sys  # noqa: E402

from cemjax.common.errors import EXIT_INPUT, ArgumentParser, guarded  # noqa: E402
from cemjax.curate.cross_sections import RULES  # noqa: E402
from cemjax.curate.guards import check_spacing  # noqa: E402
from cemjax.curate.manifest import format_summary  # noqa: E402
from cemjax.curate.pipeline import CurateConfig  # noqa: E402
from cemjax.curate.pipeline import run as curate  # noqa: E402
from cemjax.io.convert import INTENSITY_RULES  # noqa: E402


@guarded
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", nargs="+", required=True, help="folders and/or files, each optionally NAME=PATH")
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=0, help="dedup visiting order")
    ap.add_argument("--max-distance", type=int, default=12, help="Hamming radius of near-duplicates")
    ap.add_argument("--rules", default="paper", choices=sorted(RULES), help="the reference's v0.1 (paper) or v2")
    ap.add_argument("--intensity", default="auto", choices=INTENSITY_RULES, help="how values become 8-bit")
    ap.add_argument("--spacing", default=None, help="sz,sy,sx nm for volumes without metadata")
    ap.add_argument("--model-dir", default=None, help="trained quality classifier (default: pre-filter only)")
    ap.add_argument(
        "--threshold", type=float, default=None, help="keep when P(informative) > threshold (default: the model's)"
    )
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--verbose", action="store_true", help="Beam's INFO logs and tracebacks of expected errors")
    a = ap.parse_args(argv)
    spacing = check_spacing(a.spacing)
    cfg = CurateConfig(
        a.input, a.output, a.seed, a.max_distance, a.rules, a.intensity, spacing, a.model_dir, a.threshold,
        beam_args=beam_args, progress=not a.quiet,
    )  # fmt: skip
    result = curate(cfg)
    print(format_summary(result.summary))
    print(f"{len(result.rejected)} input(s) rejected; {result.seconds:.1f}s; outputs in {a.output}")
    return EXIT_INPUT if result.rejected else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
