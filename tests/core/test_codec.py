import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet import codec
from meshnet.codec import CodecError

portable = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(portable)
def test_portable_values_survive_a_round_trip(value):
    assert codec.roundtrip(value) == value


@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_gives_a_value_or_codec_error(data):
    try:
        codec.decode(data)
    except CodecError:
        pass


def test_bytes_after_the_first_item_are_an_error():
    with pytest.raises(CodecError, match="after the first item"):
        codec.decode(codec.encode(1) + b"\x00")


def test_deep_nesting_is_refused_not_recursed_into():
    with pytest.raises(CodecError, match="depth"):
        codec.decode(b"\x81" * 10_000 + b"\x00")


def test_an_object_cbor_cannot_carry_is_a_codec_error_naming_it():
    class Unportable:
        pass

    with pytest.raises(CodecError, match="Unportable"):
        codec.encode([Unportable()])
