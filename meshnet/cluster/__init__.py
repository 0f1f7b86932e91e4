"""Clusters of nodes: calls to addresses and names on other nodes.

``meshnet.cluster.skynet`` holds the codecs of skynet's own cluster protocol; node links
and the cluster API land with the cluster work.
"""
