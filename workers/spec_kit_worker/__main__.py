"""Entry point of a worker process."""

import argparse
import sys

from spec_kit_runtime.bootstrap import Bootstrap

from .host import WorkerHost
from .parent import die_with_parent
from .rlimits import apply_limits


def main() -> int:
    parser = argparse.ArgumentParser(prog="spec_kit_worker")
    parser.add_argument("--bootstrap-fd", type=int, required=True)
    args = parser.parse_args()
    bootstrap = Bootstrap.read_from(args.bootstrap_fd)
    die_with_parent(bootstrap.supervisor_pid)
    apply_limits(bootstrap)
    return WorkerHost(bootstrap).run()


if __name__ == "__main__":
    sys.exit(main())
