"""The debug console's built-in commands (skynet's ``debug_console``, the meshnet way).

Each returns its output; an address argument (``ADDR``) is ``:0100000a`` or a name
(``.store``); arguments passed to services are JSON literals (``meshnet.console.args``).
"""

from __future__ import annotations

import gc
import json
import time
from typing import TYPE_CHECKING, Any

from meshnet.address import format_address
from meshnet.console.args import ArgumentError, Words
from meshnet.console.loglevels import service_levels
from meshnet.console.memory import megabytes, resident_bytes, service_bytes
from meshnet.console.registry import COMMANDS, CommandError, console_command
from meshnet.console.tables import shorten, table
from meshnet.console.tasks import describe_tasks
from meshnet.context import ServiceContext
from meshnet.dispatch import PING
from meshnet.loader import service_key
from meshnet.probes import live_services, reported_connections

if TYPE_CHECKING:
    from meshnet.console.server import ConsoleServer


@console_command("help", "help", "list the commands")
async def _help(console: ConsoleServer, words: Words) -> str:
    words.done()
    rows = [(c.usage, c.help) for c in sorted(COMMANDS.values(), key=lambda c: c.name)]
    return table(["command", "what it does"], rows)


@console_command("list", "list", "every service: address, names, class, start arguments")
async def _list(console: ConsoleServer, words: Words) -> str:
    words.done()
    rows = [
        (ctx.label, _names(ctx), service_key(type(ctx.instance)), _args(console, ctx))
        for ctx in live_services(console.node)
    ]
    return table(["address", "name", "class", "args"], rows)


@console_command(
    "stat",
    "stat",
    "every service: queued messages, handled, failed, pending calls, tasks, CPU seconds",
)
async def _stat(console: ConsoleServer, words: Words) -> str:
    words.done()
    sampling = console.node.observer is not None and console.node.observer.sampling
    rows = [
        (
            ctx.label,
            _names(ctx),
            type(ctx.instance).__qualname__,
            len(ctx.mailbox),
            ctx.stats.handled,
            ctx.stats.failed,
            len(ctx.pending),
            len(ctx.stepped),
            f"{ctx.stats.cpu:.2f}" if sampling else "-",
        )
        for ctx in live_services(console.node)
    ]
    headers = ["address", "name", "class", "queue", "handled", "failed", "pending", "tasks", "cpu"]
    note = "" if sampling else "\n(cpu: sampled only while the node has metrics on)"
    return table(headers, rows) + note


@console_command("info", "info ADDR", "everything the runtime knows about one service")
async def _info(console: ConsoleServer, words: Words) -> str:
    ctx = _service(console, words)
    words.done()
    stats = ctx.stats
    mailbox = ctx.mailbox
    lines = [
        ("address", ctx.label),
        ("class", service_key(type(ctx.instance))),
        ("names", _names(ctx) or "-"),
        ("start args", _args(console, ctx, width=400)),
        ("mailbox", f"{len(mailbox)} queued of {mailbox.capacity} ({mailbox.policy} when full)"),
        ("handled", f"{stats.handled} (failed {stats.failed})"),
        ("sent", stats.sent if console.node.observer is not None else "- (counted with metrics)"),
        ("call errors", json.dumps(stats.call_errors or {}, sort_keys=True)),
        ("late replies", stats.late_replies),
        ("pending calls", len(ctx.pending)),
        ("owes answers", len(ctx.open_requests)),
        ("tasks", len(ctx.stepped)),
        ("subscriptions", len(ctx.subscriptions)),
        ("cpu seconds", f"{stats.cpu:.2f}"),
    ]
    return table(["what", "value"], lines)


@console_command("mem", "mem", "the process's resident memory and an estimate per service")
async def _mem(console: ConsoleServer, words: Words) -> str:
    words.done()
    rows = []
    for ctx in live_services(console.node):
        size, complete = service_bytes(ctx.instance)
        rows.append((ctx.label, _names(ctx), type(ctx.instance).__qualname__, _kib(size, complete)))
    summary = f"process resident memory: {megabytes(resident_bytes())}"
    return summary + "\n" + table(["address", "name", "class", "estimate"], rows)


@console_command(
    "gc", "gc", "run a full garbage collection; show what it freed and the collector's setting"
)
async def _gc(console: ConsoleServer, words: Words) -> str:
    words.done()
    before = resident_bytes()
    collected = gc.collect()
    after = resident_bytes()
    young, middle, old = gc.get_threshold()
    setting = (
        f"thresholds {young} {middle} {old} (young collections every {young} allocations)"
        if gc.isenabled() and young
        else "automatic collection is off"
    )
    return (
        f"collected {collected} objects; resident memory {megabytes(before)} before, "
        f"{megabytes(after)} after; {setting}"
    )


@console_command("ping", "ping ADDR", "a round trip through the service's mailbox")
async def _ping(console: ConsoleServer, words: Words) -> str:
    ctx = _service(console, words)
    words.done()
    started = time.perf_counter()
    await console.call(ctx.address, PING)
    return f"{ctx.label}: {(time.perf_counter() - started) * 1e3:.3f} ms"


@console_command("call", "call ADDR CMD ARGS...", "call a command; ARGS are JSON literals")
async def _call(console: ConsoleServer, words: Words) -> str:
    target, name, args = _request(console, words)
    return _json(await console.call(target, name, *args))


@console_command("send", "send ADDR CMD ARGS...", "send a command (no answer); ARGS are JSON")
async def _send(console: ConsoleServer, words: Words) -> str:
    target, name, args = _request(console, words)
    await console.send(target, name, *args)
    return f"sent {name!r} to {_shown(target)}"


@console_command("start", "start CLASS ARGS...", "start package.module:Class with JSON arguments")
async def _start(console: ConsoleServer, words: Words) -> str:
    spec = words.text("CLASS")
    args = words.json_values()
    return str(await console.newservice(spec, *args))


@console_command("exit", "exit ADDR", "end a service as if it called exit() (a normal end)")
async def _exit(console: ConsoleServer, words: Words) -> str:
    ctx = _stoppable(console, words)
    await console.node.exit_service(ctx.address)
    return f"{ctx.label} exited"


@console_command("kill", "kill ADDR", "stop a service now; its callers get ServiceExited")
async def _kill(console: ConsoleServer, words: Words) -> str:
    ctx = _stoppable(console, words)
    await console.node.kill(ctx.address)
    return f"{ctx.label} killed"


@console_command("service", "service", "the unique services (uniqueservice) and their addresses")
async def _service(console: ConsoleServer, words: Words) -> str:
    words.done()
    rows = sorted((key, str(address)) for key, address in console.node.unique_services().items())
    return table(["class", "address"], rows) if rows else "no unique services"


@console_command("task", "task ADDR", "a service's pending calls and task tree, with their lines")
async def _task(console: ConsoleServer, words: Words) -> str:
    ctx = _service(console, words)
    words.done()
    return describe_tasks(ctx)


@console_command(
    "netstat", "netstat", "client connections: peer, bytes in and out, unsent, idle seconds"
)
async def _netstat(console: ConsoleServer, words: Words) -> str:
    words.done()
    rows = [
        (
            row.fd,
            format_address(row.gate),
            row.kind,
            row.peer,
            row.received_bytes,
            row.sent_bytes,
            row.unsent_bytes,
            f"{row.idle:.1f}",
        )
        for row in reported_connections(console.node)
    ]
    if not rows:
        return "no client connections"
    headers = ["fd", "gate", "kind", "peer", "in", "out", "unsent", "idle"]
    return table(headers, rows)


@console_command(
    "log", "log ADDR LEVEL", "log one service at LEVEL (DEBUG ... CRITICAL, or default)"
)
async def _log(console: ConsoleServer, words: Words) -> str:
    ctx = _service(console, words)
    level = words.text("LEVEL")
    words.done()
    try:
        service_levels.set(ctx.label, level)
    except ValueError as exc:
        raise ArgumentError(f"LEVEL: {exc}") from None
    return f"{ctx.label} logs at {level.upper()}"


# --- helpers ------------------------------------------------------------------------


def _service(console: ConsoleServer, words: Words) -> ServiceContext:
    target = words.address()
    return console.node.local(target)


def _stoppable(console: ConsoleServer, words: Words) -> ServiceContext:
    ctx = _service(console, words)
    words.done()
    if ctx is console._ctx:
        raise CommandError("the console cannot stop itself; close the connection instead")
    return ctx


def _request(console: ConsoleServer, words: Words) -> tuple[int | str, str, list[Any]]:
    target = words.address()
    name = words.text("CMD")
    return target, name, words.json_values()


def _names(ctx: ServiceContext) -> str:
    return ",".join(sorted(ctx.names))


def _args(console: ConsoleServer, ctx: ServiceContext, width: int = 60) -> str:
    return shorten(_json(list(console.node.start_args(ctx.address))), width)


def _json(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False)


def _shown(target: int | str) -> str:
    return target if isinstance(target, str) else format_address(target)


def _kib(size: int, complete: bool) -> str:
    return f"{size / 1024:.1f} KiB" + ("" if complete else " (at least)")
