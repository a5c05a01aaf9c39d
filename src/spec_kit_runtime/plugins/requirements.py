"""A manifest's ``dependencies``: plugin ids and package requirements told apart, and a
requirement checked against what is installed. Pure: what is installed is passed in.

Spec-Kit's generator writes package requirements (``spec-kit-contracts>=1.0.0``) in the
same list as 1.0's plugin ids, so the form of each entry decides, never what happens to be
installed or discovered:

* an entry that is a plugin id (``[a-z0-9][a-z0-9_-]{0,63}``) is a **plugin dependency**
  (started first, stopped last), as before: ``requests`` names a plugin, not the package;
* any other entry must be a PEP 508 requirement that says it is one, with a version
  specifier, extras, a marker or a URL (``requests>=2``, ``foo[bar]``,
  ``foo; python_version >= "3.11"``, ``foo @ https://...``): a **package requirement**;
* a bare name that is not a plugin id (``PyYAML``, ``zope.interface``) is refused: read as
  a plugin id it is invalid, and a case or a dot should not silently turn a plugin
  dependency into a package one. Any specifier makes it a requirement (``PyYAML>=0``).

PEP 508 and PEP 440 are parsed by ``packaging``, the implementation pip uses. It is
imported when an entry needs it, not with this module: compiling it costs about 30 ms
where no bytecode is written, which manifests without requirements need not pay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from spec_kit_runtime.plugins.security import is_valid_plugin_id, plugin_id_problem

# Looks up an installed distribution's version by its canonical name (None: not installed).
InstalledLookup = Callable[[str], str | None]
MAX_REQUIREMENT_LENGTH = 500
MAX_REQUIREMENTS = 64  # per plugin: each is looked up on the supervisor's loop at load


def requirement_problem(entry: str) -> str | None:
    """Why ``entry``, which is not a plugin id, is no package requirement either (None: it
    is one)."""
    from packaging.requirements import InvalidRequirement, Requirement

    if len(entry) > MAX_REQUIREMENT_LENGTH:
        return f"is longer than {MAX_REQUIREMENT_LENGTH} characters"
    try:
        parsed = Requirement(entry)
    except (InvalidRequirement, ValueError, RecursionError) as exc:  # some packaging
        first = str(exc).splitlines()[0] if str(exc) else "invalid"  # releases raise these
        return f"{entry!r} is neither a plugin id nor a valid PEP 508 requirement ({first})"
    if not (parsed.specifier or parsed.extras or parsed.marker or parsed.url):
        return (f"{plugin_id_problem(entry)}, so it is no plugin id; and a bare package name "
                "is not read as a requirement: to require the package, add a version "
                f"specifier (e.g. '{entry}>=0')")
    return None


def split_dependencies(entries: Iterable[str]) -> tuple[list[str], list[str]]:
    """The plugin ids and the package requirements among valid ``entries``, each in order."""
    ids: list[str] = []
    requirements: list[str] = []
    for entry in entries:
        (ids if is_valid_plugin_id(entry) else requirements).append(entry)
    return ids, requirements


@dataclass(frozen=True)
class Unmet:
    """A requirement not met here, and what is installed instead (None: nothing)."""

    requirement: str
    name: str
    installed: str | None
    reason: str = ""  # set when the installed version could not be compared

    def describe(self) -> str:
        """``spec-kit-contracts>=1.0.0 (spec-kit-contracts 0.9.0 is installed)``."""
        if self.installed is None:
            found = f"{self.name} is not installed"
        else:
            found = f"{self.name} {self.installed} is installed"
        return f"{self.requirement} ({found}{'; ' + self.reason if self.reason else ''})"


def unmet(requirement: str, installed: InstalledLookup,
          environment: Mapping[str, str] | None = None) -> Unmet | None:
    """What is wrong with ``requirement`` here, or None when it is met or does not apply.

    ``installed`` maps a canonical distribution name (PEP 503) to its version. A marker
    is evaluated in ``environment`` (default: this interpreter's, which is the workers');
    one that does not hold means the requirement does not apply. Pre-releases count
    (``2.0.0.dev0`` meets ``>=1.0``), as for ``pip check``: what is installed is what runs.
    Not checked: extras (whether the extra's own packages are there) and a URL's source.
    Raises ValueError for a string that is no requirement (the manifest refused those).
    """
    from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Requirement(requirement)
    except (InvalidRequirement, ValueError, RecursionError) as exc:
        raise ValueError(f"{requirement!r} is not a PEP 508 requirement: {exc}") from exc
    if parsed.marker is not None:
        try:
            # ``extra`` is "": a plugin is loaded with no extras asked for.
            if not parsed.marker.evaluate({"extra": "", **(environment or {})}):
                return None
        except (UndefinedComparison, UndefinedEnvironmentName, InvalidVersion, ValueError,
                RecursionError) as exc:  # a version string too long for int(), say
            return Unmet(requirement, parsed.name, installed(canonicalize_name(parsed.name)),
                         f"its marker cannot be evaluated: {str(exc)[:200]}")
    version = installed(canonicalize_name(parsed.name))
    if version is None:
        return Unmet(requirement, parsed.name, None)
    if not parsed.specifier:
        return None
    try:
        if parsed.specifier.contains(Version(version), prereleases=True):
            return None
    except InvalidVersion:
        return Unmet(requirement, parsed.name, version,
                     "not a PEP 440 version, so it cannot be compared")
    except ValueError as exc:  # a specifier's version too long for int(), say
        return Unmet(requirement, parsed.name, version,
                     f"it cannot be compared: {str(exc)[:200]}")
    return Unmet(requirement, parsed.name, version)

