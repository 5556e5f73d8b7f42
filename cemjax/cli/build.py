"""Build TFDS datasets from local folders (nothing is downloaded): `cem500k` and `cem_benchmarks/<name>`.

  cemjax-build cem500k --manual_dir PATCHES --data_dir ~/tensorflow_datasets
  cemjax-build cem_benchmarks/lucchi_pp cem_benchmarks/guay --manual_dir BENCHMARKS
(the same as `python -m cemjax.data.build …`; see `cemjax.data.build`).
"""

import sys

from cemjax.common.errors import guarded
from cemjax.data.build import main as build_main


@guarded
def main(argv: list[str] | None = None) -> int:
    build_main(argv)
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
