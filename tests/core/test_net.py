import trio

from meshnet import Service, command
from meshnet.net import serve_tcp


class Echo(Service):
    """Echoes one line per connection; the word 'crash' makes the handler raise."""

    async def init(self):
        self.bound_port, _ = await serve_tcp(self, self.handle, "127.0.0.1", 0)

    async def handle(self, stream):
        data = await stream.receive_some(100)
        if data == b"crash":
            raise RuntimeError("handler bug")
        await stream.send_all(data)

    @command
    async def port(self):
        return self.bound_port


async def exchange(port, data):
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        return await stream.receive_some(100)


async def test_each_connection_is_served_by_the_handler(node):
    echo = await node.newservice(Echo)
    port = await node.call(echo, "port")
    assert await exchange(port, b"hello") == b"hello"


async def test_a_failing_handler_closes_only_its_connection(node, caplog):
    echo = await node.newservice(Echo)
    port = await node.call(echo, "port")
    assert await exchange(port, b"crash") == b""
    assert await exchange(port, b"still here") == b"still here"
    assert any("handler failed" in r.getMessage() for r in caplog.records)
