"""The wire protocol: msgpack over asyncio, authenticated. See connection.py."""

from raggio.rpc.connection import Connection
from raggio.rpc.transport import Server, connect, local_ip_for, split_address

__all__ = ["Connection", "Server", "connect", "local_ip_for", "split_address"]
