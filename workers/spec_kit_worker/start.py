"""A worker's life, forked or spawned: bind it to its parent, take on its limits, serve its
plugin; nothing of the plugin runs before this. At the end nothing of the plugin is left:
its processes go with the worker, those that left its process group too."""

import os
import signal

from spec_kit_runtime import cgroups
from spec_kit_runtime.bootstrap import Bootstrap
from spec_kit_runtime.process_tree import OWNER_VARIABLE, signal_descendants

from .host import WorkerHost
from .parent import die_with_parent
from .prctl import PR_SET_NO_NEW_PRIVS, prctl
from .rlimits import apply_limits


def run_worker(bootstrap: Bootstrap) -> int:
    """Run the worker host for ``bootstrap``; the return value is the exit code."""
    die_with_parent(bootstrap.parent_pid)
    cgroups.join(bootstrap.cgroups)
    os.environ[OWNER_VARIABLE] = str(os.getpid())  # inherited: marks the plugin's processes
    apply_limits(bootstrap)
    prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid or file capabilities for the plugin, ever
    code = WorkerHost(bootstrap).run()
    signal_descendants(os.getpid(), signal.SIGKILL)
    return code
