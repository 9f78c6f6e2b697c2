"""The wire protocol against real sockets, TCP and Unix, with the same checks."""

import asyncio
import socket

import pytest

from raggio.exceptions import AuthenticationError, ConnectionLost, RpcError
from raggio.rpc import RawReply, Server, connect

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


def test_connect_gives_up_in_time_on_a_peer_that_accepts_nothing(listen, tmp_path):
    """A stopped process's full accept queue: the kernel drops new connections, and would
    go on retrying them for minutes."""
    family = socket.AF_INET if listen.startswith("127.") else socket.AF_UNIX
    with socket.socket(family, socket.SOCK_STREAM) as stopped:
        stopped.bind(("127.0.0.1", 0) if family == socket.AF_INET else listen[len("unix:"):])
        stopped.listen(0)  # never accepted
        where = stopped.getsockname()
        address = f"127.0.0.1:{where[1]}" if family == socket.AF_INET else listen
        queued = []
        for _ in range(8):  # more than the queue holds
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(where)
            except (BlockingIOError, InterruptedError):
                pass
            queued.append(sock)

        async def main():
            with pytest.raises(RpcError, match=f"Could not reach {address} after 1 s"):
                await connect(address, token=TOKEN, timeout_s=1)
        try:
            run(main())
        finally:
            for sock in queued:
                sock.close()


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


def raw_handlers(blob):
    async def drip(conn, n):
        # A reply that comes after a delay, so that other traffic interleaves around it.
        await asyncio.sleep(0.01)
        return RawReply(blob[:n])

    return {"raw": lambda conn, n: RawReply(blob[:n]), "drip": drip,
            "echo": lambda conn, payload: payload}


def test_raw_replies_land_in_the_callers_buffer_between_other_messages(listen):
    blob = bytes(range(256)) * (64 * 1024 + 3)  # ~16 MiB: many reads per frame

    async def main():
        async with Server(raw_handlers(blob), token=TOKEN, listen=listen) as server:
            conn = await connect(server.address, token=TOKEN, timeout_s=5)
            dests = [bytearray(len(blob)) for _ in range(3)]
            sizes = [len(blob), 5, 0]
            calls = []
            for dest, size in zip(dests, sizes):
                calls.append(conn.call_into("raw", size, memoryview(dest)))
                calls.append(conn.call("echo", size))  # msgpack frames right behind each
            calls.append(conn.call_into("drip", 1000, memoryview(dests[2])))
            results = await asyncio.gather(*calls)
            assert results == [len(blob), len(blob), 5, 5, 0, 0, 1000]
            assert bytes(dests[0]) == blob
            assert bytes(dests[1][:5]) == blob[:5] and not any(dests[1][5:])
            assert bytes(dests[2][:1000]) == blob[:1000]
            conn.close()

    run(main())


def test_a_raw_reply_bigger_than_its_buffer_fails_that_call_only(listen):
    async def main():
        async with Server(raw_handlers(b"x" * 1000), token=TOKEN, listen=listen) as server:
            conn = await connect(server.address, token=TOKEN, timeout_s=5)
            with pytest.raises(RpcError, match="1000 raw bytes .* room for 10"):
                await conn.call_into("raw", 1000, memoryview(bytearray(10)))
            assert await conn.call("echo", "still in step") == "still in step"
            conn.close()

    run(main())


def test_a_raw_reply_cut_off_midway_fails_its_call(listen):
    blob = b"y" * (64 * 1024 * 1024)

    def cut(conn, n):
        # The bytes start to flow, then the server drops the connection without a goodbye.
        asyncio.get_running_loop().call_later(0.001, conn._transport.abort)
        return RawReply(blob)

    async def main():
        async with Server({"cut": cut}, token=TOKEN, listen=listen) as server:
            conn = await connect(server.address, token=TOKEN, timeout_s=5)
            with pytest.raises(ConnectionLost):
                await conn.call_into("cut", None, memoryview(bytearray(len(blob))))

    run(main())
