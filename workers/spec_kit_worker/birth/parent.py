"""Make a process die with its parent, even when the parent is SIGKILLed."""

import os
import signal

from spec_kit_worker.confinement.prctl import PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, prctl


def die_with_parent(parent_pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel for ``sig`` when the parent dies, then check it has not already.

    PR_SET_PDEATHSIG fires when the parent *thread* exits: workers are forked by the fork
    server's only thread, which lives as long as the fork server.
    """
    prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent_pid:
        os._exit(70)  # the parent died before prctl took effect


def adopt_orphans() -> None:
    """Become the child subreaper: orphans below this process are reparented to it, not init."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
