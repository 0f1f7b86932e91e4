"""The page server's request heads: found in any chunking, refused past MAX_HEAD."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo_game.http import MAX_HEAD, HttpError, complete_head, request_path

HEADER_LINE = st.from_regex(rb"\AX-[a-z]{1,8}: [a-z0-9]{0,64}\r\n\Z")


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(HEADER_LINE, max_size=200))
    return b"GET / HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"


@given(heads(), st.binary(max_size=64), st.data())
def test_a_head_is_found_however_it_arrives_and_only_once_all_of_it_has(head, after, data):
    stream = head + after
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    received = b""
    for cut in [*cuts, len(stream)]:
        received = stream[:cut]
        if len(head) > MAX_HEAD:
            if cut >= MAX_HEAD:
                with pytest.raises(HttpError, match="431"):
                    complete_head(received)
            continue
        assert complete_head(received) == (head if cut >= len(head) else None)


NO_NEWLINE = st.builds(
    lambda piece, extra: (piece * (MAX_HEAD // len(piece) + 1))[: MAX_HEAD + extra],
    st.binary(min_size=1, max_size=64).map(lambda data: data.replace(b"\n", b" ")),
    st.integers(0, 64),
)
"""At least MAX_HEAD bytes without a newline, so without the end of a head."""


@given(NO_NEWLINE)
def test_a_head_without_its_end_within_max_head_is_refused(data):
    with pytest.raises(HttpError, match="431"):
        complete_head(data)


CONTROL = st.characters(max_codepoint=0x1F) | st.just("\x7f")


@given(st.text(max_size=8), CONTROL, st.text(max_size=8))
def test_a_path_with_a_control_character_is_a_bad_request(before, control, after):
    quoted = "".join(f"%{ord(c):02X}" for c in before + control + after)
    with pytest.raises(HttpError, match="400"):
        request_path(f"/{quoted}")
