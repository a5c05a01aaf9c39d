"""Which hardening layers a worker runs under, checked from the outside where the kernel lets us.

The worker applies them to itself before plugin code runs; once it has proved its secret,
the supervisor reads what the kernel says of the process rather than trusting the worker:
``no_new_privs`` and ``seccomp`` and the uid from ``/proc/PID/status``, its own network
namespace by comparing ``/proc/PID/ns/net`` with the supervisor's. Landlock is the one layer
the kernel does not show anywhere (not in ``/proc/PID/status``, not in ``/proc/PID/attr``):
``landlock`` is the worker's word, given in its Hello, which it sends before any plugin
code has run. A layer that is off comes with the reason, in ``reasons``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.policy.confinement import WorkerConfinement
from spec_kit_runtime.wire.codec import unpack_value

_UNSAID = "the worker did not say why"


def kernel_flags(pid: int) -> dict[str, Any]:
    """``NoNewPrivs``, ``Seccomp`` and the real ``uid`` of ``pid`` (empty if it is gone)."""
    flags: dict[str, Any] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name == "NoNewPrivs":
                    flags["no_new_privs"] = value.strip() == "1"
                elif name == "Seccomp":
                    flags["seccomp"] = value.strip() != "0"
                elif name == "Uid":
                    flags["uid"] = int(value.split()[0])
    except OSError:
        pass
    return flags


def own_network(pid: int) -> bool:
    """Whether ``pid`` lives in another network namespace than this process."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def layers(pid: int, sandbox: bool, cgroups: bool, asked: WorkerConfinement,
           told: bytes) -> dict[str, Any]:
    """Every layer, on or off, for the status of the worker ``pid``.

    ``asked`` is what the worker was asked to apply, ``told`` its Hello's body: what it
    says of that (a malformed one says nothing).
    """
    flags = kernel_flags(pid)
    try:
        said: Mapping[str, Any] = unpack_value(told) or {}
    except ProtocolError:
        said = {}
    if not isinstance(said, dict):
        said = {}
    uid = flags.get("uid")
    found = {
        "landlock": said.get("landlock") is True,
        "own_network": own_network(pid),
        "own_uid": uid is not None and uid != os.getuid(),
    }
    reasons = {}
    for layer, on in found.items():
        if not on:
            why = asked.reasons.get(layer) or said.get(layer)
            reasons[layer] = why if isinstance(why, str) else _UNSAID
    return {
        "process": True,  # a worker process of its own: the boundary that holds
        "sandbox": sandbox,  # the in-process Python sandbox (defence in depth only)
        "no_new_privs": flags.get("no_new_privs", False),
        "cgroups": cgroups,
        "seccomp": flags.get("seccomp", False),
        **found,
        "uid": uid,
        "reasons": reasons,
    }
