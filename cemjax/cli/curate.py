"""Curate raw EM into CEM-style patches (docs/method.md §1).

    cemjax-curate --input raw/ more.mrc --output curated/ [--spacing 30,8,8] \
        [--model-dir quality_model/] [-- --runner=FlinkRunner ...]

Everything after `--` goes to Apache Beam unchanged (default: DirectRunner, 2 worker processes).
Exit status: 0 = all inputs curated, 3 = done but some inputs were rejected (see rejected.csv); errors as
every cemjax job (`cemjax.common.errors`).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: dhash's small matmuls are slower threaded

import argparse  # noqa: E402
import sys  # noqa: E402

from cemjax.common.errors import EXIT_INPUT, guarded  # noqa: E402
from cemjax.curate.manifest import format_summary  # noqa: E402
from cemjax.curate.pipeline import CurateConfig  # noqa: E402
from cemjax.curate.pipeline import run as curate  # noqa: E402


@guarded
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", nargs="+", required=True, help="folders and/or files")
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=0, help="dedup visiting order")
    ap.add_argument("--max-distance", type=int, default=12, help="Hamming radius of near-duplicates")
    ap.add_argument("--anisotropy", type=float, default=0.2, help="above: xy sections only (v2: 0.25)")
    ap.add_argument("--spacing", default=None, help="sz,sy,sx nm for volumes without metadata")
    ap.add_argument("--model-dir", default=None, help="trained quality classifier (default: pre-filter only)")
    ap.add_argument(
        "--threshold", type=float, default=None, help="keep when P(informative) > threshold (default: the model's)"
    )
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--verbose", action="store_true", help="Beam's INFO logs and tracebacks of expected errors")
    a = ap.parse_args(argv)
    spacing = tuple(float(v) for v in a.spacing.split(",")) if a.spacing else None
    cfg = CurateConfig(
        a.input, a.output, a.seed, a.max_distance, a.anisotropy, spacing, a.model_dir, a.threshold,
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
