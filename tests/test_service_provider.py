"""ServiceProvider: the 1.0 README example, resolution order, and clear failures."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from spec_kit_contracts import IConfigService, IFileSystemService, ServiceContractError

from spec_kit_runtime.inprocess.service_provider import ServiceProvider


class Clock:
    """A stand-in interface."""


def test_readme_example_runs_as_written() -> None:
    fs_impl, config_impl = object(), object()

    provider = ServiceProvider()

    provider.register_service("plugin-id", IFileSystemService, fs_impl)
    provider.register_service("plugin-id", IConfigService, config_impl)

    fs = provider.get_service(IFileSystemService)

    assert fs is fs_impl
    assert provider.get_service(IConfigService, "plugin-id") is config_impl


def test_singleton_and_factory() -> None:
    provider = ServiceProvider()
    the_clock = Clock()
    provider.register_singleton(Clock, the_clock)
    provider.register_factory(list, list)
    assert provider.resolve(Clock) is the_clock
    first, second = provider.resolve(list), provider.resolve(list)
    assert first == [] and first is not second


def test_plugin_own_service_wins_over_singleton() -> None:
    provider = ServiceProvider()
    provider.register_singleton(Clock, "global")
    provider.register_service("design", Clock, "design's")
    assert provider.resolve(Clock, "design") == "design's"
    assert provider.resolve(Clock, "other") == "global"
    assert provider.resolve(Clock) == "global"


def test_unresolvable_names_the_interface() -> None:
    with pytest.raises(ServiceContractError, match=r"Clock for plugin 'design'.*no singleton"):
        ServiceProvider().resolve(Clock, "design")


def test_several_providers_must_be_chosen_between() -> None:
    provider = ServiceProvider()
    provider.register_service("b", Clock, "b's")
    provider.register_service("a", Clock, "a's")
    with pytest.raises(ServiceContractError, match=r"several plugins \(a, b\)"):
        provider.get_service(Clock)
    assert provider.get_service(Clock, "b") == "b's"


def test_unregister_plugin_services() -> None:
    provider = ServiceProvider()
    provider.register_service("design", Clock, "design's")
    provider.unregister_plugin_services("design")
    provider.unregister_plugin_services("design")  # idempotent
    with pytest.raises(ServiceContractError):
        provider.resolve(Clock, "design")


def test_available_services_are_what_resolve_answers() -> None:
    provider = ServiceProvider()
    provider.register_singleton(Clock, Clock())
    provider.register_factory(list, list)
    provider.register_service("a", IConfigService, "a")
    provider.register_service("a", IFileSystemService, "a")
    provider.register_service("b", IFileSystemService, "b")  # ambiguous without a plugin id
    assert set(provider.get_available_services()) == {Clock, list, IConfigService}
    assert set(provider.get_available_services("b")) == {
        Clock, list, IConfigService, IFileSystemService,
    }


def test_factory_may_resolve_other_services() -> None:
    provider = ServiceProvider()
    provider.register_singleton(Clock, "tick")
    provider.register_factory(dict, lambda: {"clock": provider.resolve(Clock)})
    assert provider.resolve(dict) == {"clock": "tick"}


def test_non_callable_factory_is_refused() -> None:
    with pytest.raises(TypeError):
        ServiceProvider().register_factory(Clock, "not callable")


def test_concurrent_registration_and_resolution() -> None:
    provider = ServiceProvider()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(300):
                plugin = f"p{n}"
                provider.register_service(plugin, Clock, i)
                assert provider.resolve(Clock, plugin) == i
                provider.unregister_plugin_services(plugin)
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads: list[Any] = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
