"""OS confinement of the workers, as configured: Landlock, a network namespace, another uid.

``runtime.hardening`` sets it for every plugin, ``plugins.ID.hardening`` per plugin; a
manifest may ask for network (``"network": true``). From those, the supervisor works out
what each worker is asked to apply (``plan``) and why a layer is not asked for; the worker
applies it to itself before plugin code runs (``spec_kit_worker.confinement.layers``), where
its kernel allows, and says in its Hello why a layer it was asked for could not be had.
"""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from spec_kit_runtime.errors import ConfigError


@dataclass(frozen=True)
class Confinement:
    """A plugin's confinement settings (config defaults, overridable per plugin)."""

    landlock: bool = True  # files: the interpreter read-only, the plugin folder, its data
    network_namespace: bool = True  # no network, unless the manifest asks for it
    worker_user: str | int | None = None  # as root: run the worker as this user


@dataclass(frozen=True)
class WorkerConfinement:
    """What one worker is asked to apply; ``reasons``: why a layer is not asked for."""

    landlock: bool
    network: bool  # the manifest asks for network: no TCP restriction either
    own_network: bool
    uid: int | None
    gid: int | None
    reasons: Mapping[str, str] = field(default_factory=dict)


def user_ids(user: str | int) -> tuple[int, int]:
    """uid and primary gid of a user name or uid; KeyError if there is none."""
    entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def plan(settings: Confinement, wants_network: bool, supervisor_uid: int) -> WorkerConfinement:
    """What a worker of a plugin with these settings is asked to apply."""
    reasons: dict[str, str] = {}
    if not settings.landlock:
        reasons["landlock"] = "off in the config (hardening.landlock)"
    if wants_network:
        reasons["own_network"] = "the manifest asks for network"
    elif not settings.network_namespace:
        reasons["own_network"] = "off in the config (hardening.network_namespace)"
    uid = gid = None
    if settings.worker_user is None:
        reasons["own_uid"] = "no worker_user configured (hardening.worker_user)"
    elif supervisor_uid != 0:
        reasons["own_uid"] = "worker_user applies only when the supervisor runs as root"
    else:
        try:
            uid, gid = user_ids(settings.worker_user)
        except KeyError:
            raise ConfigError(f"hardening.worker_user {settings.worker_user!r}: no such user "
                              "here (any more)") from None
        if uid == supervisor_uid:
            reasons["own_uid"] = "worker_user is the supervisor's own user"
            uid = gid = None
    return WorkerConfinement(settings.landlock, wants_network, "own_network" not in reasons,
                             uid, gid, reasons)


def confinement_from_data(data: Mapping[str, Any], base: Confinement) -> Confinement:
    """``base`` with the settings in ``data`` applied; ValueError says what is wrong."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("landlock", "network_namespace"):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
        elif key == "worker_user":
            if value is not None:
                if (isinstance(value, bool) or not isinstance(value, str | int)
                        or (isinstance(value, int) and value < 0)):
                    raise ValueError("worker_user must be null, a user name or a uid")
                try:
                    user_ids(value)
                except KeyError:
                    raise ValueError(f"worker_user {value!r}: no such user here") from None
        else:
            raise ValueError(f"unknown key '{key}' (known: landlock, network_namespace, "
                             "worker_user)")
        values[key] = value
    return replace(base, **values)
