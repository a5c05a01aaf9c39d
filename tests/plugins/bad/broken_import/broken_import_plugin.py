"""Test plugin whose module cannot be imported (a dependency is missing)."""

import spec_kit_tests_no_such_module  # noqa: F401
