"""Which hardening layers a worker runs under, checked from the outside (``/proc``).

The worker applies them to itself before plugin code runs; the supervisor reads what the
kernel says of the process, once the worker has proved its secret, rather than trusting
the worker's word. Layers not built yet are reported as off, not left out.
"""

from __future__ import annotations

from typing import Any


def kernel_flags(pid: int) -> dict[str, Any]:
    """``NoNewPrivs`` and ``Seccomp`` of ``pid`` from ``/proc/PID/status`` (empty if gone)."""
    flags: dict[str, Any] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name == "NoNewPrivs":
                    flags["no_new_privs"] = value.strip() == "1"
                elif name == "Seccomp":
                    flags["seccomp"] = value.strip() != "0"
    except OSError:
        pass
    return flags


def layers(pid: int, sandbox: bool, cgroups: bool) -> dict[str, Any]:
    """Every layer, on or off, for the status of the worker ``pid``."""
    flags = kernel_flags(pid)
    return {
        "process": True,  # a worker process of its own: the boundary that holds
        "sandbox": sandbox,  # the in-process Python sandbox (defence in depth only)
        "no_new_privs": flags.get("no_new_privs", False),
        "cgroups": cgroups,
        "seccomp": flags.get("seccomp", False),
        "landlock": False,  # not built yet (security issue)
        "own_network": False,  # not built yet: workers share the host's network
    }
