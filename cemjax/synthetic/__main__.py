"""CLI: ``python -m cemjax.synthetic --out DIR [--seed N] [--size small|demo]`` writes a synthetic world."""

from __future__ import annotations

import argparse
import json
import time

from cemjax.synthetic.world import write_world


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cemjax.synthetic", description=__doc__)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=("small", "demo"), default="small")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = write_world(args.out, seed=args.seed, size=args.size)
    print(json.dumps(summary, indent=2, sort_keys=True))
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
