-- The cluster as skynet sees it: meshnode is the meshnet node's cluster.skynet_listen.
sknode = "127.0.0.1:2528"
meshnode = "127.0.0.1:2529"
