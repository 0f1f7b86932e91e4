"""meshnet: a structured-concurrency service mesh for game servers, on trio."""
