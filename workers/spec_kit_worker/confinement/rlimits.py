"""Apply the plugin's resource limits to this process before any plugin code runs."""

import resource

from spec_kit_runtime.policy.limits import CPU_HARD_GRACE
from spec_kit_runtime.wire.bootstrap import Bootstrap

_MIB = 1024 * 1024


def apply_limits(boot: Bootstrap) -> None:
    """setrlimit for memory (RLIMIT_DATA), CPU time, open files; and no core dumps."""
    _set(resource.RLIMIT_CORE, 0, 0)
    if boot.memory_mb is not None:
        _set(resource.RLIMIT_DATA, boot.memory_mb * _MIB, boot.memory_mb * _MIB)
    if boot.cpu_seconds is not None:
        _set(resource.RLIMIT_CPU, boot.cpu_seconds, boot.cpu_seconds + CPU_HARD_GRACE)
    if boot.open_files is not None:
        _set(resource.RLIMIT_NOFILE, boot.open_files, boot.open_files)


def _set(which: int, soft: int, hard: int) -> None:
    """Lower a limit, never raising one above what this process was given."""
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))
