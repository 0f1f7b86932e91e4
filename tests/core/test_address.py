import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet import Address
from meshnet.address import AddressError


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
