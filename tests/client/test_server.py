"""The client server of ``raggio start --head --ray-client-server-port``, as a user meets it.

The head is a daemon of this module (its own temp dir), stopped at the end by pid (never
``raggio stop``, which would end every raggio process on the machine). A client in a
network namespace of its own reaches the head through one forwarded port only.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap

import psutil
import pytest

from raggio import cluster_file
from raggio.test_utils import env_for

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]

CLIENT = """
    import sys
    import raggio as ray
    ray.init(sys.argv[1] if len(sys.argv) > 1 else None)  # else RAY_ADDRESS's

    @ray.remote
    def where():
        print("running remotely")
        return ray.get_runtime_context().get_node_id()

    print("node", ray.get(where.remote()))
    ray.shutdown()
"""

#: A byte pipe between two addresses ("HOST:PORT" or "unix:PATH"), one connection at a
#: time or many: the only way out of the client's network namespace.
FORWARDER = """
    import asyncio, sys

    async def open_to(address):
        if address.startswith("unix:"):
            return await asyncio.open_unix_connection(address[5:])
        host, port = address.rsplit(":", 1)
        return await asyncio.open_connection(host, int(port))

    async def pipe(reader, writer):
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def main(listen, target):
        async def serve(reader, writer):
            target_reader, target_writer = await open_to(target)
            await asyncio.gather(pipe(reader, target_writer), pipe(target_reader, writer))
        if listen.startswith("unix:"):
            server = await asyncio.start_unix_server(serve, listen[5:])
        else:
            host, port = listen.rsplit(":", 1)
            server = await asyncio.start_server(serve, host, int(port))
        print("listening", flush=True)
        await server.serve_forever()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemons(temp_dir) -> list[psutil.Process]:
    """The head's processes: those whose command line names this module's temp dir."""
    return [proc for proc in psutil.process_iter(["cmdline"])
            if str(temp_dir) in " ".join(proc.info["cmdline"] or [])]


@contextlib.contextmanager
def _raggio_start_head(temp_dir, port: int, module_daemons: list):
    """``raggio start --head`` with its client server on ``port``; stopped by pid after."""
    result = subprocess.run(
        RAGGIO + ["start", "--head", "--port=0", "--include-dashboard=false", "--num-cpus=1",
                  "--object-store-memory=100000000", "--node-ip-address=127.0.0.1",
                  f"--ray-client-server-port={port}", f"--temp-dir={temp_dir}"],
        capture_output=True, text=True, env=env_for(temp_dir), timeout=60)
    daemons = _daemons(temp_dir)
    module_daemons.extend(daemons)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        info = cluster_file.read(str(temp_dir))
        yield dict(info, temp_dir=temp_dir, port=port, stdout=result.stdout,
                   stderr=result.stderr, token=cluster_file.read_token(info))
    finally:
        for proc in daemons:
            proc.send_signal(signal.SIGTERM)
        psutil.wait_procs(daemons, timeout=30)


@pytest.fixture(scope="module")
def daemon_head(tmp_path_factory, module_daemons):
    with _raggio_start_head(tmp_path_factory.mktemp("raggio-start"), _free_port(),
                            module_daemons) as head:
        yield head


def test_a_client_port_in_use_leaves_the_head_running_without_it(tmp_path, module_daemons):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with _raggio_start_head(tmp_path, port, module_daemons) as head:
            assert "ray_client_address" not in head
            assert f"not serving ray:// clients (port {port} in use?)" in head["stderr"]


def _client_env(head) -> dict:
    return {**env_for(head["temp_dir"]), "RAGGIO_AUTH_TOKEN": head["token"]}


def test_raggio_start_serves_ray_clients_on_the_given_port(daemon_head):
    address = f"127.0.0.1:{daemon_head['port']}"
    assert daemon_head["ray_client_address"] == address
    assert f"ray.init('ray://{address}')" in daemon_head["stdout"]
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CLIENT), f"ray://{address}"],
                            capture_output=True, text=True, env=_client_env(daemon_head),
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "running remotely" in result.stdout
    assert "node " in result.stdout
    # Ray's other spelling: the address in RAY_ADDRESS, and raggio's scheme.
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CLIENT)],
                            capture_output=True, text=True, timeout=60,
                            env=dict(_client_env(daemon_head), RAY_ADDRESS=f"raggio://{address}"))
    assert result.returncode == 0, result.stderr
    assert "running remotely" in result.stdout


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs `unshare --net` (root)")
def test_a_client_that_reaches_only_the_client_port(daemon_head, tmp_path):
    """The client runs in a network namespace of its own, whose loopback holds one thing:
    a forwarder from its 127.0.0.1:10001 to the head's client port (over a unix socket,
    which crosses namespaces). The control store's port, for one, is unreachable there."""
    forwarder = tmp_path / "forward.py"
    forwarder.write_text(textwrap.dedent(FORWARDER))
    client = tmp_path / "client.py"
    client.write_text(textwrap.dedent(CLIENT))
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {daemon_head['gcs_address'].rsplit(':')[1]}),
                                     timeout=5)
            print("control store reachable")
        except OSError:
            print("control store unreachable")
    """))
    bridge = f"unix:{tmp_path}/client-port.sock"
    outside = subprocess.Popen([sys.executable, str(forwarder), bridge,
                                f"127.0.0.1:{daemon_head['port']}"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert outside.stdout.readline().strip() == "listening"
        script = (f"ip link set lo up && {sys.executable} {forwarder} 127.0.0.1:10001 {bridge}"
                  f" > /dev/null & forwarder=$!; {sys.executable} {probe} && "
                  f"{sys.executable} {client} ray://127.0.0.1:10001; status=$?; "
                  "kill $forwarder; exit $status")
        result = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True,
                                text=True, env=_client_env(daemon_head), timeout=90)
    finally:
        outside.kill()
        outside.wait()
        outside.stdout.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "control store unreachable" in result.stdout
    assert "running remotely" in result.stdout
