import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from meshnet import Address, NoSuchService, Service, ServiceStartError, open_node
from meshnet.address import AddressError, LocalIds


def test_address_prints_like_skynet():
    assert str(Address.make(1, 10)) == ":0100000a"


def test_address_splits_into_node_and_local_id():
    address = Address.make(3, 0x123456)
    assert (address.node, address.local) == (3, 0x123456)


@given(st.integers(0, 255), st.integers(0, 0xFFFFFF))
def test_text_form_parses_back_to_the_same_address(node_id, local_id):
    address = Address.make(node_id, local_id)
    assert Address.parse(str(address)) == address
    assert Address.parse(str(address)).node == node_id


@given(st.text(max_size=12))
def test_parsing_arbitrary_text_gives_an_address_or_address_error(text):
    try:
        Address.parse(text)
    except AddressError:
        pass


@pytest.mark.parametrize("node_id, local_id", [(256, 1), (-1, 1), (1, 1 << 24), (1, -1)])
def test_out_of_range_parts_are_refused(node_id, local_id):
    with pytest.raises(AddressError):
        Address.make(node_id, local_id)


@given(st.integers(0, 255), st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_an_address_keeps_node_local_id_and_incarnation_apart(node_id, local_id, incarnation):
    address = Address.make(node_id, local_id, incarnation)
    assert (address.node, address.local, address.incarnation) == (node_id, local_id, incarnation)
    assert Address.parse(str(address)) == address.handle


def test_local_ids_wrap_around_and_skip_those_in_use_or_resting():
    ids = LocalIds(bits=3, quarantine=10.0)  # ids 1..7
    taken = [ids.take(now=0.0) for _ in range(5)]
    assert taken == [1, 2, 3, 4, 5]
    ids.free(2, now=0.0)
    assert [ids.take(now=1.0), ids.take(now=1.0)] == [6, 7]
    with pytest.raises(AddressError, match="no local id left: 6 in use and 1 freed less"):
        ids.take(now=5.0)
    assert ids.take(now=10.0) == 2  # its rest is over


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), max_size=200))
def test_a_local_id_is_never_given_while_in_use_or_resting(steps):
    ids, now, in_use, freed_at = LocalIds(bits=4, quarantine=0.5), 0.0, [], {}
    for take, advance in steps:
        now += advance
        if take or not in_use:
            try:
                local = ids.take(now)
            except AddressError:
                continue
            assert local not in in_use and now - freed_at.get(local, -1.0) >= 0.5
            in_use.append(local)
        else:
            local = in_use.pop(0)
            ids.free(local, now)
            freed_at[local] = now


class Idle(Service):
    pass


async def test_a_node_reuses_local_ids_so_it_never_runs_out(autojump_clock):
    async with open_node(local_id_bits=3) as node:  # 7 ids; the system service has one
        for _ in range(50):
            await node.kill(await node.newservice(Idle))
            await trio.sleep(61)


async def test_a_stale_address_fails_instead_of_reaching_a_newer_service(autojump_clock):
    async with open_node(local_id_bits=3) as node:
        stale = await node.newservice(Idle)
        await node.kill(stale)
        newer = [await node.newservice(Idle) for _ in range(5)]  # every other id in use
        with pytest.raises(ServiceStartError, match="no local id left"):
            await node.newservice(Idle)  # the stale id rests: it is not given out
        with pytest.raises(NoSuchService):
            await node.call(stale, "anything")
        await trio.sleep(61)
        reused = await node.newservice(Idle)
        assert Address(reused).local == Address(stale).local and reused not in newer


async def test_an_address_from_a_previous_incarnation_reaches_nothing():
    async with open_node() as before:
        old = await before.newservice(Idle)
    async with open_node() as after:
        new = await after.newservice(Idle)
        assert Address(new).handle == Address(old).handle  # same node id, same local id
        with pytest.raises(NoSuchService):
            await after.call(old, "anything")
        assert after.local(Address(new).handle).address == new  # the text form still works
