"""An example protocol that uses every kind of field; also a module for dump_module to read."""

from typing import Optional

from meshnet.gate.proto import Protocol

proto = Protocol("example")

Item = proto.struct("Item", {"id": int, "count": int, "label": str | None})
Bag = proto.struct("Bag", {"owner": str, "items": list[Item], "best": Item | None})

proto.message(
    1, "signup", {"user": str, "password": str}, target="auth", rule="pass", reply={"ok": bool}
)
proto.message(
    2, "signin", {"user": str, "password": str}, target="auth", rule="pass", reply={"ok": bool}
)
proto.message(10, "login", target="agent", rule="auth", reply={"ok": bool})
proto.message(11, "ping", {"sent": float}, target="agent", rule="auth")
proto.message(
    12,
    "trade",
    {
        "bag": Bag,
        "gift": None | Item,
        "memo": bytes | None,
        "grid": list[list[int]],
        "flags": list[bool],
        "ratio": Optional[float],  # noqa: UP045 -- typing.Optional is accepted too
    },
    target="agent",
    rule="auth",
    reply={"bag": Bag, "accepted": list[Item]},
)
proto.message(100, "welcome", {"motd": str, "online": int})
