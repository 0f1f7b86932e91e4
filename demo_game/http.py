"""Just enough HTTP/1.1 for the static page server: read a request head, build a response.

Every response closes its connection, so there is no keep-alive or chunking to handle.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from meshnet.errors import MeshnetError

MAX_HEAD = 8192
"""Bytes a request head may take, up to and including its blank line."""
END_OF_HEAD = b"\r\n\r\n"


class HttpError(MeshnetError):
    """A request the server answers with an error status."""

    def __init__(self, status: HTTPStatus, detail: str = "") -> None:
        super().__init__(f"{status.value} {status.phrase}" + (f": {detail}" if detail else ""))
        self.status = status


def complete_head(data: bytes) -> bytes | None:
    """The request head at the start of ``data``, up to and including its blank line, once
    all of it has come (None before); HttpError(431) once it cannot fit in ``MAX_HEAD``."""
    end = data.find(END_OF_HEAD)
    if end < 0 and len(data) < MAX_HEAD:
        return None
    if end < 0 or end + len(END_OF_HEAD) > MAX_HEAD:
        raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEAD} bytes")
    return data[: end + len(END_OF_HEAD)]


def parse_request_head(head: bytes) -> tuple[str, str]:
    """The method and the target of a request head; HttpError(400) if malformed."""
    line = head.partition(b"\r\n")[0]
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HttpError(HTTPStatus.BAD_REQUEST, "not an HTTP/1.x request line")
    try:
        method, target = parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(HTTPStatus.BAD_REQUEST, "request line is not ASCII") from None
    return method, target


def request_path(target: str) -> str:
    """The decoded path of a request target; HttpError(400) if it holds a control
    character (a NUL would make a file name the operating system refuses)."""
    path = unquote(urlsplit(target).path)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise HttpError(HTTPStatus.BAD_REQUEST, "control character in the path")
    return path


def response(
    status: HTTPStatus, body: bytes = b"", content_type: str = "text/plain", *, head: bool = False
) -> bytes:
    """A whole response; with ``head`` the headers only (for a HEAD request)."""
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    header = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return header if head else header + body


def error_response(error: HttpError, *, head: bool = False) -> bytes:
    """The whole HTTP response for ``error``: its status, and the status line as body;
    with ``head`` the headers only."""
    return response(error.status, f"{error}\n".encode(), head=head)
