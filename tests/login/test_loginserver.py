"""LoginServer over real TCP: the recorded skynet exchange, refusals, and misbehaving clients.

Every misbehaving client is interrupted, right before its bad step, by a well-behaved login
that must succeed; after it another good login must succeed too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import pytest
import trio
from Crypto.Cipher import DES
from login_servers import HOST, PASSWORD, Checking, RawClient, good_login
from login_vectors import params

from meshnet import command
from meshnet.login import handshake
from meshnet.login.client import LoginRefused, login
from meshnet.login.crypt import P, base64encode, desencode
from meshnet.login.loginserver import LoginServer
from meshnet.login.wire import parse_token

h = bytes.fromhex

Meanwhile = Callable[[], Awaitable[object]]


@pytest.fixture(autouse=True)
def login_logs(caplog):
    caplog.set_level(logging.INFO, logger="meshnet.login")
    return caplog


async def start(node, *args) -> int:
    server = await node.newservice(Checking, *args)
    return await node.call(server, "port")


# --- the exchange recorded from skynet ---------------------------------------------------


class Recorded(LoginServer):
    """Replays one exchange of login_transcript.json with its recorded keys."""

    async def init(self, exchange: dict) -> None:
        self.exchange = exchange
        self.logins: list[list[bytes]] = []
        await super().init(HOST, 0)

    def handshake_keys(self) -> tuple[bytes, bytes]:
        login = self.exchange["login"]
        return h(login["challenge"]), h(login["server_private"])

    async def auth_handler(self, token: bytes) -> tuple[bytes, bytes]:
        fields = parse_token(token)
        assert fields.password == self.exchange["pass"].encode()
        return fields.server, fields.user

    async def login_handler(self, server: bytes, uid: bytes, secret: bytes) -> str:
        self.logins.append([server, uid, secret])
        return self.exchange["subid"]

    @command
    async def recorded_logins(self) -> list[list[bytes]]:
        return self.logins


exchanges = params("login_transcript.json", "exchanges", lambda exchange: exchange["user"])


@pytest.mark.parametrize("exchange", exchanges)
async def test_server_speaks_the_recorded_exchange_byte_for_byte(node, exchange):
    server = await node.newservice(Recorded, exchange)
    async with await RawClient.connect(await node.call(server, "port")) as client:
        for line in exchange["login"]["lines"]:
            if line["dir"] == "S->C":
                assert await client.receive_line() == h(line["wire"]), line["what"]
            else:
                await client.send(h(line["wire"]))
        assert await client.rest() == b""
    user, server_name = exchange["user"].encode(), exchange["server"].encode()
    secret = h(exchange["login"]["secret"])
    assert await node.call(server, "recorded_logins") == [[server_name, user, secret]]


@pytest.mark.parametrize("exchange", exchanges)
async def test_client_logs_in_to_the_recorded_server(node, exchange):
    server = await node.newservice(Recorded, exchange)
    result = await login(
        HOST,
        await node.call(server, "port"),
        exchange["server"],
        exchange["user"],
        exchange["pass"],
        key=h(exchange["login"]["client_private"]),
    )
    assert result.subid == exchange["subid"].encode()
    assert result.secret == h(exchange["login"]["secret"])
    assert (result.uid, result.server) == (exchange["user"].encode(), exchange["server"].encode())


# --- successful logins -------------------------------------------------------------------


async def test_client_and_server_share_the_secret(node):
    server = await node.newservice(Checking)
    port = await node.call(server, "port")
    result = await good_login(port)
    assert result.subid == b"1"
    assert result.server == b"sample"
    assert await node.call(server, "secret_of", b"alice") == result.secret


async def test_many_clients_log_in_at_once(node):
    port = await start(node)
    results = []

    async def one(n: int) -> None:
        results.append(await good_login(port, f"user{n}"))

    async with trio.open_nursery() as nursery:
        for n in range(30):
            nursery.start_soon(one, n)
    assert sorted(int(result.subid) for result in results) == list(range(1, 31))
    assert len({result.secret for result in results}) == 30


@pytest.mark.parametrize(
    "subid, sent",
    [(7, b"7"), ("abc", b"abc"), (b"\x00\xff", b"\x00\xff"), (None, b"")],
    ids=["int", "str", "bytes", "none"],
)
async def test_subid_is_sent_like_skynets_tostring(node, subid, sent):
    class Fixed(Checking):
        async def login_handler(self, server, uid, secret):
            return subid

    server = await node.newservice(Fixed)
    assert (await good_login(await node.call(server, "port"))).subid == sent


async def test_a_subid_of_another_type_is_a_login_handler_failure(node):
    class Floating(Checking):
        async def login_handler(self, server, uid, secret):
            return 1.5

    server = await node.newservice(Floating)
    with pytest.raises(LoginRefused) as refused:
        await good_login(await node.call(server, "port"))
    assert refused.value.code == 403


# --- misbehaving clients -----------------------------------------------------------------

BAD_REQUEST = b"400 Bad Request\n"
CLOSED = b""
"""What a client reads when the server closes without a status line."""


async def key_line_case(client: RawClient, meanwhile: Meanwhile, line: bytes) -> None:
    await client.receive_line()
    await meanwhile()
    await client.send(line + b"\n")


def token_line(plain: bytes) -> Callable[[bytes], bytes]:
    return lambda secret: handshake.token_line(plain, secret)


def truncated_token(secret: bytes) -> bytes:
    return base64encode(desencode(secret, b"QQ==@Qg==:Qw==")[:-1])


def badly_padded_token(secret: bytes) -> bytes:
    return base64encode(DES.new(secret, DES.MODE_ECB).encrypt(bytes(8)))


def credentials_token(user: bytes, password: bytes) -> Callable[[bytes], bytes]:
    return token_line(b"%s@c2FtcGxl:%s" % (base64encode(user), base64encode(password)))


def key_case(line: bytes):
    return lambda client, meanwhile: key_line_case(client, meanwhile, line)


def token_with(make: Callable[[bytes], bytes]):
    async def case(client: RawClient, meanwhile: Meanwhile) -> None:
        challenge, secret = await client.exchange_keys()
        await client.answer_challenge(challenge, secret)
        await meanwhile()
        await client.send(make(secret) + b"\n")

    return case


async def wrong_challenge_answer(client: RawClient, meanwhile: Meanwhile) -> None:
    _, secret = await client.exchange_keys()
    await meanwhile()
    await client.send(handshake.challenge_line(b"11111111", secret) + b"\n")


async def challenge_answer_not_base64(client: RawClient, meanwhile: Meanwhile) -> None:
    await client.exchange_keys()
    await meanwhile()
    await client.send(b"A\n")


async def line_over_8_kib(client: RawClient, meanwhile: Meanwhile) -> None:
    await client.receive_line()
    await meanwhile()
    await client.send(b"x" * 9000)


async def closes_mid_handshake(client: RawClient, meanwhile: Meanwhile) -> None:
    await client.exchange_keys()
    await meanwhile()
    await client.stream.send_eof()


BAD_CLIENTS = {
    "key-garbage": (key_case(b"****A****"), BAD_REQUEST, "public key|not valid base64"),
    "key-7-bytes": (key_case(base64encode(b"7 bytes")), BAD_REQUEST, "is 7 bytes"),
    "key-9-bytes": (key_case(base64encode(b"9 bytes!!")), BAD_REQUEST, "is 9 bytes"),
    "key-zero": (key_case(base64encode(bytes(8))), BAD_REQUEST, "unusable: Can't be 0"),
    **{
        f"key-{name}": (
            key_case(base64encode(value.to_bytes(8, "little"))),
            BAD_REQUEST,
            f"unusable: {value} is a degenerate DH value",
        )
        for name, value in {"one": 1, "p-1": P - 1, "p": P, "p+1": P + 1}.items()
    },
    "key-line-of-8-kib": (key_case(b"x" * 8192), BAD_REQUEST, "is 6144 bytes"),
    "challenge-wrong": (wrong_challenge_answer, BAD_REQUEST, "challenge failed"),
    "challenge-garbage": (challenge_answer_not_base64, BAD_REQUEST, "not valid base64"),
    "token-garbage": (token_with(lambda secret: b"A"), BAD_REQUEST, "not valid base64"),
    "token-truncated": (token_with(truncated_token), BAD_REQUEST, "does not decrypt"),
    "token-bad-padding": (token_with(badly_padded_token), BAD_REQUEST, "does not decrypt"),
    "token-without-at": (
        token_with(token_line(b"QQ==Qg==:Qw==")),
        BAD_REQUEST,
        "does not match",
    ),
    "token-without-colon": (
        token_with(token_line(b"QQ==@Qg==Qw==")),
        BAD_REQUEST,
        "does not match",
    ),
    "wrong-password": (
        token_with(credentials_token(b"bob", b"wrong")),
        b"401 Unauthorized\n",
        "invalid password",
    ),
    "login-handler-fails": (
        token_with(credentials_token(b"forbidden", PASSWORD)),
        b"403 Forbidden\n",
        "login_handler failed",
    ),
    "line-over-8-kib": (line_over_8_kib, CLOSED, "longer than 8192 bytes"),
    "closes-mid-handshake": (closes_mid_handshake, CLOSED, "closed mid-handshake"),
}


@pytest.mark.parametrize("behave, reply, logged", BAD_CLIENTS.values(), ids=BAD_CLIENTS.keys())
async def test_a_misbehaving_client_gets_its_status_and_disturbs_no_one(
    node, login_logs, behave, reply, logged
):
    port = await start(node)
    async with await RawClient.connect(port) as client:
        await behave(client, lambda: good_login(port))
        assert await client.receive_line() == reply
        assert await client.rest() == b""
    await good_login(port, "bob")
    assert any(_matches(logged, record.getMessage()) for record in login_logs.records)


@pytest.mark.parametrize(
    "token, logged",
    [
        (b"YWxpY2U=c2FtcGxl:aHVudGVyMg==", "does not match"),
        (b"YWxpY2U=@c2FtcGxl:hunter2", "token password is not valid base64"),
    ],
    ids=["without-at", "password-not-base64"],
)
async def test_a_malformed_token_is_refused_without_logging_its_password(
    node, login_logs, token, logged
):
    port = await start(node)
    async with await RawClient.connect(port) as client:
        await token_with(token_line(token))(client, lambda: good_login(port))
        assert await client.receive_line() == BAD_REQUEST
    messages = "\n".join(record.getMessage() for record in login_logs.records)
    assert logged in messages
    assert "hunter2" not in messages and "aHVudGVyMg" not in messages


def _matches(pattern: str, message: str) -> bool:
    return all(part in message for part in pattern.split("|"))


async def test_a_stalled_client_is_closed_after_the_handshake_timeout(node, login_logs):
    port = await start(node, False, 0.3)
    async with await RawClient.connect(port) as client:
        await client.receive_line()
        await good_login(port)
        with trio.fail_after(3):
            assert await client.rest() == b""
    assert any("not finished within 0.3s" in r.getMessage() for r in login_logs.records)


async def test_a_trickling_client_is_closed_after_the_handshake_timeout(node):
    port = await start(node, False, 0.3)
    async with await RawClient.connect(port) as client:
        await client.receive_line()
        with trio.move_on_after(1), contextlib.suppress(trio.BrokenResourceError):
            for byte in b"1YpGnP3tcF4=\n":  # a valid key line, too slowly
                await client.send(bytes([byte]))
                await trio.sleep(0.05)
        assert await client.rest() == b""


async def test_handlers_are_not_bounded_by_the_handshake_timeout(node):
    server = await node.newservice(Checking, False, 0.3)
    port = await node.call(server, "port")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(good_login, port, "held")  # asserts that the login succeeds
        await node.call(server, "wait_held")
        await trio.sleep(0.5)
        await node.call(server, "release")


# --- concurrent logins of one uid --------------------------------------------------------


async def test_a_uid_already_logging_in_is_not_acceptable(node, login_logs):
    server = await node.newservice(Checking)
    port = await node.call(server, "port")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(good_login, port, "held")
        await node.call(server, "wait_held")
        with pytest.raises(LoginRefused) as refused:
            await good_login(port, "held")
        await good_login(port)
        await node.call(server, "release")
    assert (refused.value.code, refused.value.line) == (406, b"406 Not Acceptable")
    assert any("already logging in" in r.getMessage() for r in login_logs.records)
    await good_login(port, "held")  # the first login finished: the uid is free again


async def test_multilogin_lets_one_uid_log_in_concurrently(node):
    server = await node.newservice(Checking, True)
    port = await node.call(server, "port")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(good_login, port, "held")
        nursery.start_soon(good_login, port, "held")
        await node.call(server, "wait_held", 2)
        await node.call(server, "release")


async def test_a_failed_login_handler_frees_the_uid(node):
    port = await start(node)
    for _ in range(2):
        with pytest.raises(LoginRefused) as refused:
            await good_login(port, "forbidden")
        assert refused.value.code == 403


async def test_status_line_is_followed_by_a_clean_close_even_if_the_client_sends_more(node):
    # Closing a socket over input it never read makes the kernel answer with a reset, which
    # can destroy the status line before the client reads it; the server must close cleanly.
    port = await start(node)
    async with await RawClient.connect(port) as client:
        _, secret = await client.exchange_keys()
        await client.send(handshake.challenge_line(b"11111111", secret) + b"\n")
        assert await client.receive_line() == BAD_REQUEST
        await client.send(b"the token line, too late\n")
        await trio.sleep(0.05)
        with trio.fail_after(5):
            assert await client.stream.receive_some(100) == b""


@pytest.mark.parametrize(
    "limits",
    [{"maxclient": 2}, {"max_per_address": 2}],
    ids=["maxclient", "max_per_address"],
)
async def test_idle_connections_past_the_cap_are_closed_at_once_and_others_log_in(node, limits):
    port = await start(node, False, 10.0, limits)
    async with await RawClient.connect(port) as first, await RawClient.connect(port) as second:
        await first.receive_line()
        await second.receive_line()  # both hold their slot, saying nothing more
        async with await RawClient.connect(port) as third:
            with trio.fail_after(3):
                assert await third.rest() == b""
    with trio.fail_after(3):
        assert (await good_login(port)).subid == b"1"


async def test_exempt_addresses_are_not_capped_per_address(node):
    port = await start(
        node, False, 10.0, {"max_per_address": 1, "per_address_exempt": ["127.0.0.1"]}
    )
    async with await RawClient.connect(port) as first:
        await first.receive_line()
        with trio.fail_after(3):
            assert (await good_login(port)).subid == b"1"
