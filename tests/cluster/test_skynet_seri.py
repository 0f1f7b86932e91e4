"""meshnet.cluster.skynet.seri is skynet.pack / skynet.unpack (lua-seri.c).

Ground truth: tests/vectors/skynet_seri.json, recorded from a skynet build (see its notes).
"""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seri_strategies import faithful_values, packable_values
from skynet_vectors import as_unpacked, cases, matches, packable, same, short_bytes

from meshnet.cluster.skynet import SkynetProtocolError
from meshnet.cluster.skynet.seri import MAX_DEPTH, SeriPackError, SeriUnpackError, pack, unpack
from meshnet.errors import MeshnetError

VECTORS = "skynet_seri.json"
# skynet packs a table with __pairs through it: every pair in the hash part. We have no such
# tables; the same Python value packs its keys 1..n as an array part, which Lua reads the same.
PACKED_THROUGH_PAIRS = "a table with __pairs (packed through it)"


def nested(depth, leaf):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- recorded from skynet ---------------------------------------------------------------


@pytest.mark.parametrize("entry", cases(VECTORS, "pack"))
def test_pack_writes_the_bytes_skynet_wrote(entry):
    packed = pack(*(packable(v) for v in entry["values"]))
    if entry["comment"] == PACKED_THROUGH_PAIRS:
        assert same(unpack(packed), unpack(short_bytes(entry["packed"])))
    else:
        assert matches(packed, entry["packed"])


@pytest.mark.parametrize("entry", cases(VECTORS, "pack"))
def test_unpack_reads_what_skynet_packed(entry):
    if "hex" in entry["packed"]:
        data = short_bytes(entry["packed"])
    else:  # long: the bytes are ours, proven identical to skynet's by size and sha1
        data = pack(*(packable(v) for v in entry["values"]))
        assert matches(data, entry["packed"])
    expected = tuple(as_unpacked(v) for v in entry["unpacked"])
    assert same(unpack(data), expected)


PACK_ERROR_ANALOGUES = {
    "function": lambda: None,
    "coroutine": (x for x in ()),
    "full userdata": object(),
    "value inside 33 tables": nested(33, 1),
    "34 nested tables": nested(33, []),
    "function inside a table": {"f": print},
}


@pytest.mark.parametrize("entry", cases(VECTORS, "pack_errors"))
def test_pack_refuses_what_skynet_refuses(entry):
    if entry["comment"] == "table containing itself":
        value = []
        value.append(value)
    else:
        value = PACK_ERROR_ANALOGUES[entry["comment"]]
    with pytest.raises(SeriPackError):
        pack(value)


# Bytes skynet.unpack accepts but a Python value cannot hold, and why.
REFUSED_ON_PURPOSE = {
    "table used as a table key": "table is used as a table key",
    "true and 1 as keys": "both keys 1 and True",
    "false and 0 as keys": "both keys False and 0",
    "light userdata": "light userdata",
    "34 nested tables (skynet unpacks them)": "more than 32 tables",
}


@pytest.mark.parametrize("entry", cases(VECTORS, "unpack"))
def test_unpack_agrees_with_skynet_on_handmade_bytes(entry):
    data = short_bytes(entry)
    if "error" in entry or entry["comment"] in REFUSED_ON_PURPOSE:
        with pytest.raises(SeriUnpackError, match=REFUSED_ON_PURPOSE.get(entry["comment"])):
            unpack(data)
    else:
        assert same(unpack(data), tuple(as_unpacked(v) for v in entry["values"]))


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "02"),
        (1, "0a01"),
        (0xFF, "0aff"),
        (0x100, "120001"),
        (0xFFFF, "12ffff"),
        (0x10000, "2200000100"),
        (2**31 - 1, "22ffffff7f"),
        (-1, "22ffffffff"),
        (-(2**31), "2200000080"),
        (2**31, "320000008000000000"),
        (-(2**31) - 1, "32ffffff7fffffffff"),
    ],
)
def test_integers_take_the_smallest_width_skynet_uses(value, encoded):
    assert pack(value).hex() == encoded
    assert unpack(bytes.fromhex(encoded)) == (value,)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_integers_beyond_int64_cannot_be_packed(value):
    with pytest.raises(SeriPackError, match="64 bits"):
        pack(value)


def test_a_float_stays_a_real_even_when_integral():
    assert pack(3.0).hex() == "420000000000000840"
    assert type(unpack(pack(3.0))[0]) is float


def test_booleans_are_not_integers():
    assert unpack(pack(True, False, 1, 0)) == (True, False, 1, 0)
    assert [type(v) for v in unpack(pack(True, 1))] == [bool, int]


# --- strings ------------------------------------------------------------------------------


def test_str_is_sent_as_utf8_and_bytes_as_they_are():
    assert pack("é") == pack(b"\xc3\xa9") == bytes.fromhex("14c3a9")


def test_strings_that_are_utf8_come_back_as_str_and_others_as_bytes():
    assert unpack(pack(b"abc", b"\xff\x00")) == ("abc", b"\xff\x00")


def test_text_false_keeps_every_string_as_bytes():
    assert unpack(pack("abc", {"k": "v"}), text=False) == (b"abc", {b"k": b"v"})


@pytest.mark.parametrize(("size", "head"), [(31, "fc"), (32, "152000"), (0xFFFF, "15ffff")])
def test_string_length_forms(size, head):
    packed = pack(b"x" * size)
    assert packed.hex().startswith(head)
    assert unpack(packed) == ("x" * size,)


def test_a_string_of_64_kib_takes_a_32_bit_length():
    packed = pack(b"x" * 0x10000)
    assert packed[:5].hex() == "2500000100"


def test_a_str_with_a_lone_surrogate_cannot_be_packed():
    with pytest.raises(SeriPackError, match="UTF-8"):
        pack("\ud800")


def test_bytearray_and_memoryview_pack_as_strings():
    assert pack(bytearray(b"ab"), memoryview(b"ab")) == pack(b"ab", b"ab")


# --- tables -------------------------------------------------------------------------------


def test_a_tuple_packs_like_a_list():
    assert pack((1, "a")) == pack([1, "a"])


def test_dict_keys_one_to_n_take_the_array_part():
    assert pack({2: "b", 1: "a"}) == pack(["a", "b"])
    assert unpack(pack({1: "a", 2: "b"})) == (["a", "b"],)


def test_a_mixed_table_is_a_dict_with_one_based_keys():
    assert unpack(pack({1: 10, 2: 20, "tag": "t"})) == ({1: 10, 2: 20, "tag": "t"},)


def test_an_empty_dict_comes_back_as_an_empty_list():
    assert unpack(pack({})) == ([],)


def test_none_fields_are_left_out():
    assert pack({"a": None, "b": 1}) == pack({"b": 1})


def test_none_items_are_nil_holes_as_lua_sees_them():
    assert pack([1, None, 3]).hex() == "1e0a01000a0300"
    assert unpack(pack([1, None, 3])) == ({1: 1, 3: 3},)
    assert unpack(pack([1, None])) == ([1],)


def test_a_float_key_with_an_integer_value_is_the_integer_key():
    assert pack({2.0: "x"}) == pack({2: "x"})


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "NoneType"), (math.nan, "NaN"), ((1, 2), "tuple"), (frozenset(), "frozenset")],
)
def test_keys_lua_cannot_hold_are_refused(key, message):
    with pytest.raises(SeriPackError, match=message):
        pack({key: 1})


def test_a_float_key_comes_back_as_an_integer_when_integral():
    data = bytes.fromhex("06" + "420000000000000040" + "0a07" + "00")  # {[2.0] = 7}
    assert unpack(data) == ({2: 7},)
    assert type(next(iter(unpack(data)[0]))) is int


@pytest.mark.parametrize(
    "value", [{1, 2}, object(), print, 1j, Exception("x")], ids=lambda v: type(v).__name__
)
def test_values_skynet_cannot_carry_are_refused(value):
    with pytest.raises(SeriPackError, match=type(value).__name__):
        pack(value)


def test_a_pack_error_says_where_the_value_is():
    with pytest.raises(SeriPackError) as caught:
        pack(1, {"items": [1, {2}]})
    assert caught.value.path == "[1]['items'][1]"
    assert "at values[1]['items'][1]" in str(caught.value)


def test_a_table_that_contains_itself_is_refused():
    table: dict = {}
    table["self"] = [table]
    with pytest.raises(SeriPackError, match="cycle"):
        pack(table)


def test_the_same_table_twice_is_not_a_cycle():
    shared = [1]
    assert unpack(pack([shared, shared])) == ([[1], [1]],)


def test_values_may_sit_inside_32_tables():
    assert unpack(pack(nested(MAX_DEPTH, 7))) == (nested(MAX_DEPTH, 7),)


def test_a_value_inside_33_tables_cannot_be_packed():
    with pytest.raises(SeriPackError, match="more than 32 tables"):
        pack(nested(MAX_DEPTH + 1, 7))


def test_an_empty_table_may_be_the_33rd_level():
    assert unpack(pack(nested(MAX_DEPTH, []))) == (nested(MAX_DEPTH, []),)


def test_unpack_refuses_values_nested_deeper_than_skynet_packs():
    data = bytes.fromhex("0e" * 33 + "0a07" + "00" * 33)
    with pytest.raises(SeriUnpackError, match="more than 32 tables"):
        unpack(data)


def test_an_array_size_past_the_tag_is_a_following_integer():
    assert pack(list(range(31)))[:3].hex() == "fe0a1f"
    assert unpack(pack(list(range(300)))) == (list(range(300)),)


def test_a_negative_array_size_is_refused():
    with pytest.raises(SeriUnpackError, match="negative"):
        unpack(bytes.fromhex("fe22ffffffff00"))


def test_an_array_size_larger_than_the_data_is_refused_before_reading_it():
    with pytest.raises(SeriUnpackError, match="truncated"):
        unpack(bytes.fromhex("fe22ffffff7f"))


def test_a_nil_field_value_removes_the_key_as_lua_does():
    data = bytes.fromhex("06" + "0c61" + "0a01" + "0c61" + "00" + "0c62" + "0a02" + "00")
    assert unpack(data) == ({"b": 2},)


# --- messages -----------------------------------------------------------------------------


def test_an_empty_message_holds_no_values():
    assert pack() == b""
    assert unpack(b"") == ()


def test_unpack_takes_any_bytes_like_object():
    assert unpack(bytearray(b"\x0a\x05")) == unpack(memoryview(b"\x0a\x05")) == (5,)


def test_trailing_garbage_is_read_as_a_value_and_refused():
    with pytest.raises(SeriUnpackError, match="bad type tag 0x07 at offset 2"):
        unpack(pack(5) + b"\x07")


def test_the_errors_are_meshnet_errors():
    assert issubclass(SeriPackError, SkynetProtocolError)
    assert issubclass(SeriUnpackError, SkynetProtocolError)
    assert issubclass(SkynetProtocolError, MeshnetError)


# --- properties ---------------------------------------------------------------------------


@given(st.lists(faithful_values, max_size=5))
def test_faithful_values_round_trip(values):
    assert same(unpack(pack(*values)), tuple(values))


@given(st.lists(packable_values, max_size=5))
def test_a_round_trip_gives_values_that_round_trip_unchanged(values):
    once = unpack(pack(*values))
    assert same(unpack(pack(*once)), once)
    assert pack(*once) == pack(*unpack(pack(*once)))


@given(st.lists(faithful_values, min_size=1, max_size=3), st.data())
def test_every_cut_inside_a_table_raises_our_error(values, data):
    packed = pack(values)
    cut = data.draw(st.integers(1, len(packed) - 1))
    with pytest.raises(SeriUnpackError):
        unpack(packed[:cut])


@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_unpack_or_raise_our_error(data, text):
    try:
        values = unpack(data, text=text)
    except SeriUnpackError:
        return
    assert isinstance(values, tuple)


@given(st.lists(st.text() | st.binary(), max_size=5))
def test_text_false_gives_bytes_for_every_string(strings):
    assert all(type(s) is bytes for s in unpack(pack(*strings), text=False))
