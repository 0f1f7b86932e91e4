"""The error base shared by the skynet codecs."""

from meshnet.errors import MeshnetError


class SkynetProtocolError(MeshnetError):
    """A value cannot be sent in skynet's format, or received bytes are not valid in it."""
