"""The control store: node, job and actor tables, the internal KV, the
cluster resource view. Runs on the head; talks to everything over RPC."""
