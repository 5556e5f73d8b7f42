"""`python -m cemjax <job> [flags]`: the same jobs as the `cemjax-<job>` console scripts (see `cemjax.cli`)."""

import importlib
import sys

from cemjax.cli import JOBS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].replace("-", "_") not in JOBS:
        sys.exit(f"usage: python -m cemjax {{{','.join(JOBS)}}} [flags]   (each job: --help)")
    job = sys.argv.pop(1).replace("-", "_")
    sys.argv[0] = f"cemjax-{job}"
    importlib.import_module(f"cemjax.cli.{job}").run()


if __name__ == "__main__":
    main()
