"""Hypothesis strategies that build bodies, valid or subtly wrong, from a proto field spec."""

from typing import Any

from hypothesis import strategies as st

from meshnet.gate.proto_types import INT_MAX, INT_MIN, FieldType, ListOf, Scalar, Struct

_INTS = st.integers(min_value=INT_MIN, max_value=INT_MAX)
_SCALARS = {
    "str": st.text(max_size=12),
    "int": _INTS,
    "float": st.floats(allow_nan=False) | _INTS,
    "bool": st.booleans(),
    "bytes": st.binary(max_size=12),
}

# One value of each wire kind, and the kinds each declared type accepts.
_SAMPLES = {
    "null": None,
    "bool": True,
    "int": 7,
    "float": 1.5,
    "str": "x",
    "bytes": b"x",
    "list": [1],
    "map": {"k": 1},
}
_ACCEPTED = {
    "str": {"str"},
    "int": {"int"},
    "float": {"float", "int"},
    "bool": {"bool"},
    "bytes": {"bytes"},
}


def values(field_type: FieldType) -> st.SearchStrategy[Any]:
    """Valid values of `field_type`."""
    if isinstance(field_type, Scalar):
        return _SCALARS[field_type.label]
    if isinstance(field_type, ListOf):
        return st.lists(values(field_type.item), max_size=3)
    assert isinstance(field_type, Struct)
    return bodies(field_type)


def bodies(struct: Struct) -> st.SearchStrategy[dict[str, Any]]:
    """Valid maps for `struct`: every required field, any optional ones (value or null)."""
    fields = struct.fields.values()
    required = {f.name: values(f.type) for f in fields if not f.optional}
    optional = {f.name: st.none() | values(f.type) for f in fields if f.optional}
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def corrupted(draw: st.DrawFn, struct: Struct) -> tuple[dict[str, Any], tuple[str | int, ...]]:
    """A body for `struct` (which needs a field) with one value replaced by a wrong-typed one.

    Returns the body and the path of the wrong value.
    """
    body = draw(bodies(struct))
    return _corrupt_field(draw, struct, body)


def _corrupt_field(draw: st.DrawFn, struct: Struct, value: dict[str, Any]) -> tuple[Any, tuple]:
    field = draw(st.sampled_from(list(struct.fields.values())))
    inner, path = _corrupt(draw, field.type, value.get(field.name), field.optional)
    return {**value, field.name: inner}, (field.name, *path)


def _corrupt(draw: st.DrawFn, field_type: FieldType, value: Any, optional: bool) -> tuple:
    descend = value is not None and draw(st.integers(min_value=0, max_value=3)) > 0
    if descend and isinstance(field_type, Struct) and field_type.fields:
        return _corrupt_field(draw, field_type, value)
    if descend and isinstance(field_type, ListOf) and value:
        index = draw(st.integers(min_value=0, max_value=len(value) - 1))
        inner, path = _corrupt(draw, field_type.item, value[index], optional=False)
        return [*value[:index], inner, *value[index + 1 :]], (index, *path)
    if isinstance(field_type, Scalar):
        accepted = _ACCEPTED[field_type.label]
    else:
        accepted = {"list"} if isinstance(field_type, ListOf) else {"map"}
    if optional:
        accepted = accepted | {"null"}
    wrong = [sample for kind, sample in _SAMPLES.items() if kind not in accepted]
    return draw(st.sampled_from(wrong)), ()
