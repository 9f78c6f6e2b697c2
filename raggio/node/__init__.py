"""The node manager: resources, worker leases, the worker pool, the
shared-memory object store and the log monitor of one node."""
