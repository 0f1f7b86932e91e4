"""skynet's own cluster protocol, spoken by meshnet so it can join a skynet cluster (issue 14).

Pure codecs, no I/O: :mod:`.seri` is ``skynet.pack``/``skynet.unpack`` (lua-seri.c) and
:mod:`.wire` is the cluster wire protocol (lua-cluster.c). Both raise subclasses of
:class:`SkynetProtocolError` on bad input.
"""

from meshnet.cluster.skynet.errors import SkynetProtocolError

__all__ = ["SkynetProtocolError"]
