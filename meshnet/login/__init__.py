"""skynet's login protocols: a login server, a msgserver and the clients of both.

``loginserver`` and ``msgserver`` are the server templates, ``client`` and ``gateclient``
the client side, ``crypt`` skynet's crypt library, and the other modules their wire formats.
"""
