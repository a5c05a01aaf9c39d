"""Dependencies told apart (plugin id or package requirement) and requirements checked
against a table of installed versions: pure, no environment read."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec_kit_runtime.errors import LifecycleError, ManifestError, RequirementError, from_data
from spec_kit_runtime.plugins.manifest_fields import parse_manifest_data
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.plugins.requirements import requirement_problem, split_dependencies, unmet
from spec_kit_runtime.supervisor.requirement_check import require_installed

INSTALLED = {
    "spec-kit-contracts": "0.9.0",
    "spec-kit-runtime": "2.0.0.dev0",
    "pyyaml": "6.0.1",
    "zope-interface": "6.1",
    "odd": "2004d",  # not a PEP 440 version
}

# (requirement, environment overrides, expected: None if met / does not apply, else the
# installed version the refusal names ("" for not installed))
CHECKS: list[tuple[str, dict[str, str], str | None]] = [
    ("spec-kit-contracts>=1.0.0", {}, "0.9.0"),
    ("spec-kit-contracts>=0.9", {}, None),
    ("spec-kit-contracts==0.9.*", {}, None),
    ("spec-kit-contracts~=1.0", {}, "0.9.0"),
    ("spec-kit-contracts>=0.5,<0.9", {}, "0.9.0"),
    ("Spec_Kit.Contracts>=0.9", {}, None),  # names compared in canonical form (PEP 503)
    ("spec-kit-runtime>=1.0.0", {}, None),  # a pre-release installed counts
    ("spec-kit-runtime>=2.0.0", {}, "2.0.0.dev0"),  # 2.0.0.dev0 comes before 2.0.0
    ("PyYAML>=6", {}, None),
    ("zope.interface>=6", {}, None),
    ("missing-package>=1", {}, ""),
    ("missing-package[extra]", {}, ""),
    ("pyyaml[extra]", {}, None),  # the extra's own packages are not checked
    ("pyyaml @ https://example.org/pyyaml.whl", {}, None),  # the URL is not compared
    ("missing-package @ https://example.org/m.whl", {}, ""),
    ("missing-package; python_version < '3'", {}, None),  # the marker does not hold here
    ("missing-package; python_version >= '3'", {}, ""),
    ("spec-kit-contracts>=1; python_version == '3.8'", {"python_version": "3.8"}, "0.9.0"),
    ("spec-kit-contracts>=1; python_version == '3.8'", {"python_version": "3.12"}, None),
    ("missing-package; sys_platform == 'win32'", {"sys_platform": "linux"}, None),
    ("missing-package; extra == 'docs'", {}, None),  # no extras are asked for a plugin
    ("odd>=1", {}, "2004d"),
    ("odd", {}, None),  # no specifier: installed is enough
]


@pytest.mark.parametrize(("requirement", "environment", "installed"), CHECKS)
def test_requirement_against_installed(requirement: str, environment: dict[str, str],
                                       installed: str | None) -> None:
    found = unmet(requirement, INSTALLED.get, environment)
    if installed is None:
        assert found is None
        return
    assert found is not None
    assert found.requirement == requirement
    assert found.installed == (installed or None)
    description = found.describe()
    assert description.startswith(requirement)
    if installed:
        assert f"{found.name} {installed} is installed" in description
    else:
        assert f"{found.name} is not installed" in description


def test_an_unusable_installed_version_says_why() -> None:
    found = unmet("odd>=1", INSTALLED.get)
    assert found is not None
    assert found.describe() == (
        "odd>=1 (odd 2004d is installed; not a PEP 440 version, so it cannot be compared)")


def test_the_lookup_gets_canonical_names() -> None:
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return None

    unmet("Zope.Interface_Thing>=1", lookup)
    assert asked == ["zope-interface-thing"]


def test_a_string_that_is_no_requirement_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a PEP 508 requirement"):
        unmet("foo>=", INSTALLED.get)


# (entry, words of the problem; None: it is a requirement). Plugin ids never get here.
FORMS: list[tuple[str, str | None]] = [
    ("spec-kit-contracts>=1.0.0", None),
    ("foo[bar]>=2; python_version>'3'", None),
    ("foo[bar]", None),
    ("foo; os_name == 'posix'", None),
    ("foo @ https://example.org/foo-1.0.whl", None),
    ("PyYAML>=0", None),
    ("Requests==2.*", None),
    ("PyYAML", "bare package name is not read as a requirement"),
    ("zope.interface", "e.g. 'zope.interface>=0'"),
    ("foo>=", "neither a plugin id nor a valid PEP 508 requirement"),
    ("foo bar", "neither a plugin id nor a valid PEP 508 requirement"),
    ("-foo", "neither a plugin id nor a valid PEP 508 requirement"),
    ("foo>=1; nonsense", "neither a plugin id nor a valid PEP 508 requirement"),
    ("foo>=1.0.0.0.0.x", "neither a plugin id nor a valid PEP 508 requirement"),
]


@pytest.mark.parametrize(("entry", "words"), FORMS)
def test_requirement_forms(entry: str, words: str | None) -> None:
    problem = requirement_problem(entry)
    if words is None:
        assert problem is None
    else:
        assert problem is not None
        assert words in problem


def test_split_keeps_ids_and_requirements_apart_in_order() -> None:
    entries = ["base", "spec-kit-contracts>=1.0.0", "requests", "requests>=2", "fs", "x[y]"]
    assert split_dependencies(entries) == (
        ["base", "requests", "fs"], ["spec-kit-contracts>=1.0.0", "requests>=2", "x[y]"])


def test_require_installed_names_the_plugin_and_each_unmet_requirement() -> None:
    info = PluginInfo("greeter", "greeter", "1.0.0", Path("/p/greeter/plugin.py"), "Plugin", {},
                      requirements=("spec-kit-contracts>=1.0.0", "pyyaml>=6", "gone>=1"))
    with pytest.raises(RequirementError) as refused:
        require_installed(info, "load", INSTALLED.get)
    error = refused.value
    assert isinstance(error, LifecycleError)
    assert error.message == (
        "plugin 'greeter' cannot be started: requirements not met: spec-kit-contracts>=1.0.0 "
        "(spec-kit-contracts 0.9.0 is installed); gone>=1 (gone is not installed)")
    assert (error.plugin, error.context["phase"]) == ("greeter", "load")
    again = from_data(error.to_data())  # as a client gets it
    assert isinstance(again, RequirementError)
    assert again.unmet == error.unmet == ["spec-kit-contracts>=1.0.0 (spec-kit-contracts 0.9.0 "
                                          "is installed)", "gone>=1 (gone is not installed)"]


def test_require_installed_passes_met_requirements_and_none() -> None:
    for requirements in ((), ("pyyaml>=6", "spec-kit-contracts<1")):
        info = PluginInfo("p", "p", "1.0.0", Path("/p/p.py"), "Plugin", {},
                          requirements=requirements)
        require_installed(info, "start", INSTALLED.get)


# -- hostile manifests: the review's cases -------------------------------------------------

def test_a_marker_that_breaks_evaluation_is_unmet_not_a_crash() -> None:
    """A version string past Python's 4300-digit int limit made marker evaluation raise a
    plain ValueError, which escaped to the supervisor's loop and wedged the plugin's slot
    (manifests now refuse entries over 500 characters, so this is a second line)."""
    huge = "anything>=0; python_version >= '" + "9" * 4400 + "'"
    found = unmet(huge, lambda name: "1.0")  # longer than a manifest allows: unmet() alone
    assert found is not None and "its marker cannot be evaluated" in found.describe()


def test_a_version_that_cannot_be_compared_is_unmet_not_a_crash() -> None:
    found = unmet("pyzmq>=" + "9" * 5000, lambda name: "26.0")
    assert found is not None and "pyzmq 26.0 is installed" in found.describe()


@pytest.mark.parametrize(("entry", "words"), [
    ("foo; " + "(" * 1000 + 'python_version>"1"' + ")" * 1000, "longer than 500"),
    ("x" * 501 + ">=1", "longer than 500"),
])
def test_pathological_requirements_are_refused_with_a_reason(entry: str, words: str) -> None:
    problem = requirement_problem(entry)
    assert problem is not None and words in problem


def test_at_most_64_package_requirements(tmp_path: Path) -> None:
    (tmp_path / "p_plugin.py").write_text("")
    with pytest.raises(ManifestError, match="65 package requirements, more than 64"):
        parse_manifest_data({"id": "p", "name": "p", "version": "1.0.0",
                             "dependencies": [f"pkg{n}>=1" for n in range(65)]},
                            tmp_path / "plugin.json", tmp_path)
