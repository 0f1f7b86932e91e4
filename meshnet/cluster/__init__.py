"""Clusters of nodes: calls to addresses and names on other nodes (not written yet)."""
