"""The public face: every name in __all__ resolves, and nothing public is missing from it."""

import importlib

import spec_kit_runtime


def test_all_names_resolve() -> None:
    for name in spec_kit_runtime.__all__:
        assert getattr(spec_kit_runtime, name) is not None, name


def test_public_classes_of_the_modules_are_exported() -> None:
    expected = {"PluginContainer", "ScopedMessageBus", "MessageBus", "DeliveryMode",
                "ServiceProvider", "PluginSandbox", "PluginInfo", "validate_path",
                "validate_plugin_path", "sanitize_plugin_id", "SupervisorClient"}
    assert expected <= set(spec_kit_runtime.__all__)
    errors = importlib.import_module("spec_kit_runtime.errors")
    failures = {name for name, value in vars(errors).items()
                if isinstance(value, type) and issubclass(value, errors.RuntimeFailure)}
    assert failures <= set(spec_kit_runtime.__all__) | {"RuntimeFailure"}


def test_unknown_names_raise_attribute_error() -> None:
    try:
        spec_kit_runtime.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
