"""Entry point of a worker started as a fresh interpreter (the fork server's spawn method)."""

import argparse
import os
import sys

from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.birth.start import run_worker
from spec_kit_worker.confinement.layers import ruleset


def main() -> int:
    parser = argparse.ArgumentParser(prog="spec_kit_worker")
    parser.add_argument("--bootstrap-fd", type=int, required=True)
    parser.add_argument("--progress-fd", type=int)  # none: the fork server could not make it
    args = parser.parse_args()
    bootstrap = Bootstrap.read_from(args.bootstrap_fd)
    return run_worker(bootstrap, ruleset(bootstrap), progress=args.progress_fd)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as a forked worker does: no waiting for threads the plugin left running
