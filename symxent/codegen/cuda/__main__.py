"""``python -m symxent.codegen.cuda [--check] [--root codegen] [NAME ...]``: write (or check) ``codegen/cuda/*.cu``."""
from __future__ import annotations

import argparse
import sys

from .generate import write_cuda


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symxent.codegen.cuda", description=__doc__)
    parser.add_argument("names", nargs="*", help="kernels to write (default: all of CUDA_LOSSES)")
    parser.add_argument("--root", default="codegen", help="the generated-code folder (default: codegen)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    paths = write_cuda(args.root, check=args.check, names=args.names or None)
    for path in paths:
        print(("drift: " if args.check else "wrote: ") + str(path))
    return 1 if (args.check and paths) else 0


if __name__ == "__main__":
    sys.exit(main())
