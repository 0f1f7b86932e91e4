"""Finding service classes from ``package.module:Class`` import paths."""

from __future__ import annotations

import importlib
import logging

from meshnet.base import BaseService
from meshnet.errors import ServiceImportError

logger = logging.getLogger(__name__)


def load_service_class(spec: str | type[BaseService]) -> type[BaseService]:
    """Return the Service subclass ``spec`` names (or ``spec`` itself if it is one).

    A module that fails to import (missing, a syntax error, an exception at import time)
    is one ``ServiceImportError`` naming it; its traceback is logged at DEBUG."""
    if isinstance(spec, type):
        if not issubclass(spec, BaseService):
            raise ServiceImportError(f"{spec.__qualname__} is not a meshnet.Service subclass")
        return spec
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ServiceImportError(f"service {spec!r} is not of the form 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        logger.debug("importing %s failed", module_name, exc_info=True)
        raise ServiceImportError(
            f"cannot import module {module_name!r} for service {spec!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ServiceImportError(
                f"module {module_name!r} has no {attribute!r} (service {spec!r})"
            ) from None
    if not (isinstance(found, type) and issubclass(found, BaseService)):
        raise ServiceImportError(f"{spec!r} is not a meshnet.Service subclass")
    return found


def service_key(cls: type[BaseService]) -> str:
    """The import path naming ``cls``, used to find unique services."""
    return f"{cls.__module__}:{cls.__qualname__}"
