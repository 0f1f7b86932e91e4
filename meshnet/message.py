"""Messages as they sit in a mailbox, and the kinds there are."""

from __future__ import annotations

from typing import Any

from meshnet.address import format_address

REQUEST = "request"
"""A command call or send: ``name`` is the command, ``args`` its arguments."""
CLIENT = "client"
"""A packet a gate routed to this service; dispatched to ``on_client``."""
TEXT = "text"
"""A line of text (skynet's PTYPE_TEXT); dispatched to ``on_text``."""
MULTICAST = "multicast"
"""A publication on a subscribed channel (``name`` None), or the notice that the channel
was deleted (``name`` ``CHANNEL_DELETED``); dispatched to the subscription's callbacks."""

KIND_HOOKS = {CLIENT: "on_client", TEXT: "on_text"}
"""The kinds a service handles by defining a method, and that method's name. No other
method can be reached by a message: commands are declared with ``@command``."""
POSTABLE_KINDS = frozenset(KIND_HOOKS)
"""Kinds that ``post`` may send; requests go through ``call``/``send``."""
CHANNEL_DELETED = "deleted"


class Message:
    """One message in a mailbox. ``session`` 0 means nobody waits for an answer."""

    __slots__ = ("kind", "source", "session", "name", "args", "claimed")

    deadline: float | None = None
    """When the caller gives up, on this node's clock (``DeadlinedMessage``); None: the
    caller's own timer is all there is (a local call)."""

    def __init__(
        self, kind: str, source: int, session: int, name: str | None, args: tuple[Any, ...]
    ) -> None:
        self.kind = kind
        self.source = source
        self.session = session
        self.name = name
        self.args = args
        self.claimed = False
        """True once a deferred responder or a redirect took over answering this message."""

    def describe(self) -> str:
        """Short text naming the message, for log lines."""
        what = self.name if self.kind == REQUEST else self.kind
        return f"{what!r} from {format_address(self.source)} session {self.session}"


class DeadlinedMessage(Message):
    """A call from another node, with its caller's deadline: the calls its handler makes
    end by then too, so remote work does not outlive its caller."""

    __slots__ = ("deadline",)

    def __init__(
        self,
        kind: str,
        source: int,
        session: int,
        name: str | None,
        args: tuple[Any, ...],
        deadline: float | None,
    ) -> None:
        super().__init__(kind, source, session, name, args)
        self.deadline = deadline
