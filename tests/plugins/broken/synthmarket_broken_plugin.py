"""A plugin that fails at import: it needs a dependency that is not installed."""

import synthmarket_dependency_that_is_not_installed  # noqa: F401

from synthmarket import hookimpl


@hookimpl
def register_generators(register):
    raise AssertionError("never reached: the import above fails")
