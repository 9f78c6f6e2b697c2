"""The wire protocol: msgpack over asyncio, authenticated. See connection.py."""

from raggio.rpc.connection import Connection, RawReply
from raggio.rpc.transport import Server, connect, local_ip_for, split_address

__all__ = ["Connection", "RawReply", "Server", "connect", "local_ip_for", "split_address"]
