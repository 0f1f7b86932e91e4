"""Finding service classes from ``package.module:Class`` import paths."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from meshnet.errors import ServiceImportError

if TYPE_CHECKING:
    from meshnet.service import Service


def load_service_class(spec: str | type[Service]) -> type[Service]:
    """Return the Service subclass ``spec`` names (or ``spec`` itself if it is one)."""
    from meshnet.service import Service

    if isinstance(spec, type):
        if not issubclass(spec, Service):
            raise ServiceImportError(f"{spec.__qualname__} is not a meshnet.Service subclass")
        return spec
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ServiceImportError(f"service {spec!r} is not of the form 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ServiceImportError(
            f"cannot import module {module_name!r} for service {spec!r}: {exc}"
        ) from exc
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ServiceImportError(
                f"module {module_name!r} has no {attribute!r} (service {spec!r})"
            ) from None
    if not (isinstance(found, type) and issubclass(found, Service)):
        raise ServiceImportError(f"{spec!r} is not a meshnet.Service subclass")
    return found


def service_key(cls: type[Service]) -> str:
    """The import path naming ``cls``, used to find unique services."""
    return f"{cls.__module__}:{cls.__qualname__}"
