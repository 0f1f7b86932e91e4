"""Order per pair: between one sender and one receiver everything is observed in the order
it was sent, answers included (DESIGN §2). Each test repeats its exchange, because a wrong
order shows up only in some runs of trio's scheduler."""

import pytest
import trio

from meshnet import Service, command
from meshnet.message import CLIENT

ROUNDS = 40


class Asker(Service):
    """Calls the answerer and notes, in one list, what it observes and in which order."""

    async def init(self):
        self.events = []
        self.channel = None

    @command
    async def ask(self, answerer, how, tag):
        result = await self.call(answerer, how, self.address, tag)
        self.events.append(f"after call {result}")

    @command
    async def note(self, tag):
        self.events.append(f"note {tag}")

    @command
    async def listen(self, channel):
        self.subscribe(channel, self.heard)

    async def heard(self, channel, source, tag):
        self.events.append(f"published {tag}")

    async def on_client(self, fd, tag):
        self.events.append(f"packet {tag}")

    @command
    async def observed(self):
        events, self.events = self.events, []
        return events


class Answerer(Service):
    """Answers a call, and sends the caller something else just before or just after."""

    async def init(self):
        self.channel = self.channel_new()
        self.held = []

    @command
    async def channel_id(self):
        return self.channel

    @command
    async def answer_then_send(self, asker, tag):
        self.response()(tag)
        await self.send(asker, "note", tag)

    @command
    async def answer_then_publish(self, asker, tag):
        self.response()(tag)
        await self.publish(self.channel, tag)

    @command
    async def answer_then_post_a_packet(self, asker, tag):
        self.response()(tag)
        await self.post(asker, CLIENT, 7, tag)

    @command
    async def send_then_answer(self, asker, tag):
        await self.send(asker, "note", tag)
        return tag

    @command
    async def hold(self, asker, tag):
        self.held.append(self.response())

    @command
    async def answer_held_in_order(self):
        for reply, tag in zip(self.held, ("first", "second"), strict=True):
            reply(tag)
        self.held.clear()


async def pair(node):
    return await node.newservice(Asker), await node.newservice(Answerer)


@pytest.mark.parametrize(
    "how, later",
    [
        ("answer_then_send", "note"),
        ("answer_then_publish", "published"),
        ("answer_then_post_a_packet", "packet"),
    ],
)
async def test_code_after_a_call_runs_before_what_the_answerer_sent_next(node, how, later):
    asker, answerer = await pair(node)
    await node.call(asker, "listen", await node.call(answerer, "channel_id"))
    for tag in range(ROUNDS):
        await node.call(asker, "ask", answerer, how, tag)
        await trio.testing.wait_all_tasks_blocked()
        assert await node.call(asker, "observed") == [f"after call {tag}", f"{later} {tag}"]


async def test_a_message_sent_before_an_answer_starts_before_the_caller_resumes(node):
    asker, answerer = await pair(node)
    for tag in range(ROUNDS):
        await node.call(asker, "ask", answerer, "send_then_answer", tag)
        assert await node.call(asker, "observed") == [f"note {tag}", f"after call {tag}"]


async def test_two_answers_resume_their_callers_in_the_order_they_were_given(node):
    asker, answerer = await pair(node)
    for _ in range(ROUNDS):
        async with trio.open_nursery() as nursery:
            for tag in ("a", "b"):
                nursery.start_soon(node.call, asker, "ask", answerer, "hold", tag)
                await trio.testing.wait_all_tasks_blocked()
            await node.call(answerer, "answer_held_in_order")
        assert await node.call(asker, "observed") == ["after call first", "after call second"]
