"""The wire protocol against real sockets, TCP and Unix, with the same checks."""

import asyncio
import socket

import pytest

from raggio.exceptions import AuthenticationError, ConnectionLost, RpcError
from raggio.rpc import Server, connect

TOKEN = "s3cret"


@pytest.fixture(params=["tcp", "unix"])
def listen(request, tmp_path):
    if request.param == "tcp":
        return "127.0.0.1:0"
    return f"unix:{tmp_path}/test.sock"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


class EchoService:
    def __init__(self):
        self.notes = []
        self.release = None

    def handlers(self):
        return {"echo": self.echo, "fail": self.fail, "note": self.note,
                "slow": self.slow, "ask_back": self.ask_back}

    def echo(self, conn, payload):
        return payload

    def fail(self, conn, payload):
        raise ValueError(f"bad payload {payload!r}")

    def note(self, conn, payload):
        self.notes.append(payload)

    async def slow(self, conn, payload):
        await asyncio.sleep(payload)
        return "done"

    async def ask_back(self, conn, payload):
        return await conn.call("whoami", None)


def test_request_reply_error_and_notify(listen):
    async def main():
        service = EchoService()
        async with Server(service.handlers(), token=TOKEN, listen=listen) as server:
            conn = await connect(server.address, token=TOKEN, timeout_s=5)
            assert await conn.call("echo", {"a": [1, b"x"]}) == {"a": [1, b"x"]}
            with pytest.raises(ValueError, match="bad payload 3"):
                await conn.call("fail", 3)
            with pytest.raises(RpcError, match="no op 'nope'"):
                await conn.call("nope", None)
            conn.notify("note", "hello")
            assert await conn.call("echo", 1) == 1  # ordered after the notify
            assert service.notes == ["hello"]
            conn.close()
    run(main())


def test_server_calls_back_over_the_same_connection(listen):
    async def main():
        service = EchoService()
        async with Server(service.handlers(), token=TOKEN, listen=listen) as server:
            conn = await connect(server.address, token=TOKEN,
                                 handlers={"whoami": lambda c, p: "client"}, timeout_s=5)
            assert await conn.call("ask_back", None) == "client"
            conn.close()
    run(main())


def test_pipelined_requests_all_answered(listen):
    async def main():
        async with Server(EchoService().handlers(), token=TOKEN, listen=listen) as server:
            conn = await connect(server.address, token=TOKEN, timeout_s=5)
            replies = await asyncio.gather(*(conn.call("echo", i) for i in range(2000)))
            assert replies == list(range(2000))
            conn.close()
    run(main())


def test_wrong_token_is_refused_with_a_fix(listen):
    async def main():
        async with Server(EchoService().handlers(), token=TOKEN, listen=listen) as server:
            with pytest.raises(AuthenticationError, match="RAGGIO_AUTH_TOKEN"):
                await connect(server.address, token="wrong", timeout_s=5)
    run(main())


def test_pending_calls_fail_when_the_peer_goes_away(listen):
    async def main():
        server = Server(EchoService().handlers(), token=TOKEN, listen=listen)
        await server.start()
        conn = await connect(server.address, token=TOKEN, timeout_s=5)
        pending = conn.call("slow", 10)
        await asyncio.sleep(0.05)
        await server.close()
        with pytest.raises(ConnectionLost):
            await pending
        with pytest.raises(ConnectionLost):
            await conn.call("echo", 1)
    run(main())


def test_unreachable_address_names_it_after_the_deadline():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    async def main():
        with pytest.raises(RpcError, match=f"127.0.0.1:{port} after 0.3 s"):
            await connect(f"127.0.0.1:{port}", token=TOKEN, timeout_s=0.3)
    run(main())


def test_port_in_use_is_a_clear_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]

    async def main():
        with pytest.raises(RpcError, match=f"Cannot listen on 127.0.0.1:{port}.*in use"):
            await Server({}, token=TOKEN, listen=f"127.0.0.1:{port}").start()
    try:
        run(main())
    finally:
        holder.close()


def test_call_timeout_names_the_op():
    async def main():
        async with Server(EchoService().handlers(), token=TOKEN, listen="127.0.0.1:0") as server:
            conn = await connect(server.address, token=TOKEN, timeout_s=5)
            with pytest.raises(RpcError, match="slow to .* no reply within 0.1 s"):
                await conn.call_with_timeout("slow", 5, 0.1)
            conn.close()
    run(main())
