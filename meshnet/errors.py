"""Exception types shared across meshnet. Every error meshnet raises derives from MeshnetError."""


class MeshnetError(Exception):
    """Base class of every error meshnet raises on purpose."""
