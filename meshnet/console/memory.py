"""Memory figures for the console's ``mem`` and ``gc``: the process's resident size and an
estimate of what each service's own objects take.

Python does not say which objects belong to which service, so the estimate walks the
objects the service instance refers to (``gc.get_referents``), adding their
``sys.getsizeof``, without entering classes, modules, functions, the node, its runtime
state or other services, and stopping after ``WALK_LIMIT`` objects. Shared objects count
for every service that reaches them.
"""

from __future__ import annotations

import gc
import resource
import sys
import types
from pathlib import Path

from meshnet.base import BaseService
from meshnet.context import ServiceContext

WALK_LIMIT = 100_000
"""Objects an estimate visits at most (the estimate then says it is a lower bound)."""
_NOT_OWNED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
    ServiceContext,
)


def resident_bytes() -> int:
    """The process's resident set size now (Linux ``/proc``), else its peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def service_bytes(instance: BaseService) -> tuple[int, bool]:
    """An estimate of the bytes ``instance``'s objects take, and whether the walk was
    complete (False: it stopped at ``WALK_LIMIT``, so the figure is a lower bound)."""
    node = getattr(instance, "_node", None)
    seen = {id(instance)}
    pending = [instance]
    total = 0
    while pending:
        if len(seen) > WALK_LIMIT:
            return total, False
        obj = pending.pop()
        total += sys.getsizeof(obj)
        for referent in gc.get_referents(obj):
            if id(referent) in seen or referent is node or isinstance(referent, _NOT_OWNED):
                continue
            if isinstance(referent, BaseService):
                continue  # another service (or the same one through a reference)
            seen.add(id(referent))
            pending.append(referent)
    return total, True


def megabytes(size: float) -> str:
    """``size`` bytes as ``12.3 MiB``."""
    return f"{size / 2**20:.1f} MiB"
