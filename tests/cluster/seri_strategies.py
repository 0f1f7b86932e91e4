"""Hypothesis strategies for Python values that skynet messages can carry."""

from hypothesis import strategies as st

int64 = st.integers(-(2**63), 2**63 - 1)
# Around every width boundary skynet's integer encoding switches at.
edge_ints = st.sampled_from(
    [0, 1, 0xFF, 0x100, 0xFFFF, 0x10000, 2**31 - 1, 2**31, -1, -(2**31), -(2**31) - 1]
    + [2**63 - 1, -(2**63)]
)
not_utf8 = st.binary().map(lambda b: b"\xff" + b)  # stays bytes after a round trip
strings = st.text() | st.text(min_size=30, max_size=40) | not_utf8


def _table_keys() -> st.SearchStrategy:
    non_integral = st.floats(allow_nan=False).filter(lambda f: not f.is_integer())
    return st.text() | int64 | st.booleans() | non_integral | not_utf8


def _not_a_sequence(table: dict) -> bool:
    """A dict that comes back as a dict: its keys are not exactly 1..n."""
    n = len(table)
    return not all(type(k) is int and 0 < k <= n for k in table)


scalars = st.booleans() | int64 | edge_ints | st.floats() | strings

# Values whose round trip gives them back unchanged: no None inside tables (a nil item or
# field is absent in Lua), no tuples (they come back as lists), no dicts keyed 1..n.
faithful_values = st.recursive(
    st.none() | scalars,
    lambda inner: (
        st.lists(inner.filter(lambda v: v is not None), max_size=40)
        | st.dictionaries(_table_keys(), inner.filter(lambda v: v is not None), max_size=8).filter(
            _not_a_sequence
        )
    ),
    max_leaves=30,
)

# Anything pack accepts: None items and fields, tuples, dicts keyed 1..n, bytearrays.
packable_values = st.recursive(
    st.none() | scalars | st.binary().map(bytearray),
    lambda inner: (
        st.lists(inner, max_size=40)
        | st.lists(inner, max_size=8).map(tuple)
        | st.dictionaries(_table_keys() | st.integers(1, 5), inner, max_size=8)
    ),
    max_leaves=30,
)
