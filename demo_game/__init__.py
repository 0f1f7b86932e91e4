"""The demo game: skynet_sample on meshnet, with passwords and persistence.

``python -m demo_game`` runs its client, its robots and ``demo``; ``demo_game/node.toml``
runs the whole game on one node.
"""
