"""Name → implementation registries (methods, proposal sources, encoders, embedders).

A registry is a plain ``dict`` whose values are either the implementation (a class or factory) or a
``"module:attribute"`` string imported on first use, so that importing a registry never imports the heavy
modules behind it. :func:`resolve` turns a name into the implementation (caching the import in the dict) and
an unknown name into a one-line :class:`~soundmask.errors.ConfigError` listing the known ones.
"""

from __future__ import annotations

import importlib
from typing import Any

from soundmask.errors import ConfigError

__all__ = ["resolve"]


def resolve(registry: dict[str, Any], name: str, what: str) -> Any:
    """The implementation registered as ``name`` in ``registry`` (``what`` names the kind in errors)."""
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}", fix=f"use one of {', '.join(sorted(registry))}")
    impl = registry[name]
    if isinstance(impl, str):
        module, _, attr = impl.partition(":")
        impl = getattr(importlib.import_module(module), attr)
        registry[name] = impl
    return impl
