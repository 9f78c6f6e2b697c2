"""raggio.launcher.ssh against real sshd's: the ``ssh_hosts`` fixture's hosts (conftest.py).

Commands with their env, secrets and streamed output; copies both ways by rsync and by
SFTP; a port forward; every way a connection fails, in words. Also what the launcher's
tests rely on from the hosts themselves: each is a machine of its own (processes, /tmp,
/dev/shm, home, host name), and a daemon started over SSH, ``raggio start --head`` among
them, outlives the session.
"""

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid

import psutil
import pytest
from ssh_hosts import FIXTURE_ROOT, SshHosts, remove_stale_fixtures

from raggio.exceptions import NodeCommandError, NodeUnreachableError
from raggio.launcher.ssh import SshTarget, connect, ssh_argv
from raggio.test_utils import wait_until

CONNECT_WAIT_S = 30.0
#: Safety net for one test's SSH work.
TEST_TIMEOUT_S = 60.0


def target(hosts, index: int = 0, **changes) -> SshTarget:
    fields = {"host": hosts.ips[index], "user": hosts.user, "key_path": hosts.key_path}
    return SshTarget(**{**fields, **changes})


def run_async(coro):
    return asyncio.run(asyncio.wait_for(coro, TEST_TIMEOUT_S))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- commands --


def test_run_exports_env_and_returns_exit_status_and_both_outputs(ssh_hosts):
    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            return await session.run('echo "out $GREETING"; echo "err $GREETING" >&2; exit 3',
                                     env={"GREETING": "it's a \"quoted\" $value"})

    result = run_async(main())
    assert result.exit_status == 3
    assert result.output.splitlines() == ["out it's a \"quoted\" $value",
                                          "err it's a \"quoted\" $value"]


def test_run_keeps_the_end_of_long_output(ssh_hosts):
    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            return await session.run("seq 1 100000")

    result = run_async(main())
    assert result.exit_status == 0
    assert result.output.endswith("\n99999\n100000")
    assert 3000 < len(result.output) <= 4200


def test_on_line_gets_each_line_while_the_command_runs(ssh_hosts):
    go = f"/tmp/{unique('go')}"

    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            first_line_seen = asyncio.Event()
            lines = []

            def on_line(line):
                lines.append(line)
                first_line_seen.set()

            async def release():  # the command waits for this, so it must still be running
                await first_line_seen.wait()
                await session.run(f"touch {go}")

            releaser = asyncio.ensure_future(release())
            result = await session.run(
                f"echo first; until [ -e {go} ]; do sleep 0.05; done; echo second",
                on_line=on_line)
            await releaser
            return result, lines

    result, lines = run_async(main())
    assert lines == ["first", "second"]
    assert result.exit_status == 0


def test_secret_env_reaches_the_command_but_no_process_argv(ssh_hosts):
    secret = unique("s3cret value with spaces")
    ready, done = f"/tmp/{unique('ready')}", f"/tmp/{unique('done')}"

    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            async def inspect_while_running():
                while (await session.run(f"test -e {ready}")).exit_status != 0:
                    await asyncio.sleep(0.05)
                command_lines = ssh_hosts.processes(0)
                await session.run(f"touch {done}")
                return command_lines

            inspector = asyncio.ensure_future(inspect_while_running())
            result = await session.run(
                f'echo "token=$TOKEN other=$OTHER"; read -r line; echo "stdin read: $?"; '
                f"touch {ready}; until [ -e {done} ]; do sleep 0.05; done",
                env={"PLAIN": "visible"}, secret_env={"TOKEN": secret, "OTHER": "two"})
            return result, await inspector

    result, command_lines = run_async(main())
    assert result.output.splitlines() == [f"token={secret} other=two", "stdin read: 1"]
    assert any("until [ -e" in line for line in command_lines)  # it was running
    assert not [line for line in command_lines if secret in line]


def test_a_command_past_its_timeout_is_stopped_and_raises(ssh_hosts):
    marker = unique("slow-command")

    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            with pytest.raises(NodeCommandError) as raised:
                await session.run(f"echo started; sleep 300 # {marker}", timeout_s=1)
            ok = await session.run("exit 124", timeout_s=30)  # its own status, in time
            return raised.value, ok

    error, ok = run_async(main())
    assert "did not finish within 1 s" in str(error) and "started" in str(error)
    assert ok.exit_status == 124
    wait_until(lambda: not [p for p in ssh_hosts.processes(0) if marker in p],
               what="the timed-out command to end")


# -- copies --


def make_tree(root):
    (root / "sub" / ".git").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / ".git" / "HEAD").write_text("ref")
    (root / "skip.log").write_text("log")


def local_files(root) -> dict[str, str]:
    return {os.path.relpath(os.path.join(d, name), root): open(os.path.join(d, name)).read()
            for d, _, names in os.walk(root) for name in names}


def sftp_sessions(hosts, index: int = 0) -> int:
    return hosts.sshd_log(index).count("subsystem 'sftp'")


@pytest.mark.parametrize("use_rsync", [None, False], ids=["rsync", "sftp"])
def test_upload_and_download_files_and_directories(ssh_hosts, tmp_path, use_rsync):
    make_tree(tmp_path / "src")
    remote = unique("~/copies")
    sftp_before = sftp_sessions(ssh_hosts)

    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            await session.upload(str(tmp_path / "src"), f"{remote}/tree",
                                 exclude=[".git", "*.log"], use_rsync=use_rsync)
            # Into an existing directory, a directory's contents merge (no nested "src").
            await session.upload(str(tmp_path / "src") + "/", f"{remote}/tree",
                                 exclude=[".git", "*.log", "/sub"], use_rsync=use_rsync)
            await session.upload(str(tmp_path / "src" / "a.txt"), f"{remote}/deep/new/a.txt",
                                 use_rsync=use_rsync)
            listing = await session.run(f"cd {remote} && find . -type f | sort")
            await session.download(f"{remote}/tree", str(tmp_path / "down" / "tree"),
                                   use_rsync=use_rsync)
            await session.download(f"{remote}/deep/new/a.txt", str(tmp_path / "down" / "a"),
                                   use_rsync=use_rsync)
            return listing

    listing = run_async(main())
    assert listing.output.splitlines() == ["./deep/new/a.txt", "./tree/a.txt", "./tree/sub/b.txt"]
    assert local_files(tmp_path / "down") == {"tree/a.txt": "a", "tree/sub/b.txt": "b",
                                              "a": "a"}
    used_sftp = sftp_sessions(ssh_hosts) > sftp_before
    assert used_sftp == (use_rsync is False)


def test_copy_failures_name_the_node_and_the_cause(ssh_hosts, tmp_path):
    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            errors = []
            for use_rsync in (None, False):
                with pytest.raises(NodeCommandError) as raised:
                    await session.download("~/no-such-file", str(tmp_path / "x"),
                                           use_rsync=use_rsync)
                errors.append(str(raised.value))
            with pytest.raises(NodeCommandError) as raised:
                await session.upload(str(tmp_path / "missing"), "~/x")
            return errors + [str(raised.value)]

    rsync_error, sftp_error, missing_local = run_async(main())
    node = f"root@{ssh_hosts.ips[0]}:~/no-such-file"
    assert node in rsync_error and "rsync failed" in rsync_error
    assert node in sftp_error and "SFTP failed" in sftp_error
    assert "no such file or directory" in missing_local


# -- port forwards --


def test_forward_local_port_reaches_a_server_only_the_node_can_see(ssh_hosts, tmp_path):
    async def main():
        async with await connect(target(ssh_hosts), wait_s=CONNECT_WAIT_S) as session:
            served = unique("served")
            started = await session.run(
                f"mkdir -p ~/{served} && echo hello > ~/{served}/index.txt && "
                f"(python -u -m http.server 0 --bind 127.0.0.1 --directory ~/{served} "
                f"> ~/{served}.log 2>&1 & echo $!)")
            server_pid = started.output.strip()
            try:
                port = await _wait_server_port(session, f"~/{served}.log")
                listener = await session.forward_local_port(0, port)
                url = f"http://127.0.0.1:{listener.get_port()}/index.txt"
                body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
                listener.close()
                return body
            finally:
                await session.run(f"kill {server_pid}")

    assert run_async(main()) == b"hello\n"


async def _wait_server_port(session, log: str) -> int:
    # http.server prints "Serving HTTP on 127.0.0.1 port N (...)" once it listens.
    while True:
        line = (await session.run(f"grep -o 'port [0-9]*' {log}")).output.strip()
        if line:
            return int(line.split()[1])
        await asyncio.sleep(0.05)


# -- connection failures --


def connect_error(ssh_target: SshTarget, wait_s: float) -> str:
    with pytest.raises(NodeUnreachableError) as raised:
        run_async(connect(ssh_target, wait_s=wait_s))
    return str(raised.value)


def test_an_address_without_a_host_is_reported_with_the_fix(ssh_hosts):
    message = connect_error(target(ssh_hosts, host=ssh_hosts.unused_ip), wait_s=1)
    assert f"root@{ssh_hosts.unused_ip}:22" in message
    assert "timed out" in message or "no route to host" in message
    assert "Check the address and that the host is up" in message


def test_a_port_without_sshd_is_reported_as_refused(ssh_hosts):
    message = connect_error(target(ssh_hosts, port=2222), wait_s=1)
    assert f"root@{ssh_hosts.ips[0]}:2222" in message
    assert "connection refused" in message and "Is sshd running on port 2222" in message


def test_a_refused_key_is_reported_at_once_with_the_config_keys_to_check(ssh_hosts, tmp_path):
    other_key = str(tmp_path / "other_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other_key], check=True)
    message = connect_error(target(ssh_hosts, key_path=other_key), wait_s=CONNECT_WAIT_S)
    assert f"refused the key {other_key} for user root" in message
    assert "auth.ssh_user and auth.ssh_private_key" in message

    message = connect_error(target(ssh_hosts, user="nobody"), wait_s=CONNECT_WAIT_S)
    assert "for user nobody" in message


def test_a_missing_or_unreadable_key_file_is_reported(ssh_hosts, tmp_path):
    missing = str(tmp_path / "missing_key")
    message = connect_error(target(ssh_hosts, key_path=missing), wait_s=CONNECT_WAIT_S)
    assert f"Cannot use the SSH private key {missing}" in message
    assert "No such file or directory" in message and "auth.ssh_private_key" in message

    not_a_key = tmp_path / "not_a_key"
    not_a_key.write_text("hello")
    message = connect_error(target(ssh_hosts, key_path=str(not_a_key)), wait_s=CONNECT_WAIT_S)
    assert f"Cannot use the SSH private key {not_a_key}" in message


def test_connect_retries_until_sshd_comes_up(ssh_hosts):
    ssh_hosts.stop_sshd(1)

    async def main():
        connecting = asyncio.ensure_future(connect(target(ssh_hosts, 1), wait_s=CONNECT_WAIT_S))
        await asyncio.sleep(0.5)  # a few refused attempts; the test holds with any number
        assert not connecting.done()
        await asyncio.to_thread(ssh_hosts.start_sshd, 1)
        async with await connecting as session:
            return await session.run("hostname")

    try:
        result = run_async(main())
    finally:
        ssh_hosts.start_sshd(1)
    assert result.output == ssh_hosts.hostnames[1]


def test_ssh_argv_logs_in_with_the_system_client(ssh_hosts):
    argv = ssh_argv(target(ssh_hosts, 2), tty=False) + ["hostname"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CONNECT_WAIT_S)
    assert (result.returncode, result.stdout.strip()) == (0, ssh_hosts.hostnames[2])
    assert ssh_argv(target(ssh_hosts), tty=True)[:2] == ["ssh", "-tt"]


# -- the hosts themselves --


def test_each_host_is_a_machine_of_its_own(ssh_hosts):
    name = unique("mine")

    async def main():
        outputs = []
        for index in range(len(ssh_hosts.ips)):
            async with await connect(target(ssh_hosts, index), wait_s=CONNECT_WAIT_S) as session:
                if index == 0:
                    await session.run(f"touch /tmp/{name} /dev/shm/{name} ~/{name}")
                outputs.append((await session.run(
                    f"hostname; hostname -i; ls /tmp/{name} /dev/shm/{name} ~/{name} "
                    "2>/dev/null | wc -l")).output.splitlines())
        return outputs

    outputs = run_async(main())
    assert [out[:2] for out in outputs] == [[h, ip] for h, ip in zip(ssh_hosts.hostnames,
                                                                      ssh_hosts.ips)]
    assert [out[2] for out in outputs] == ["3", "0", "0"]
    assert not any(os.path.exists(path) for path in
                   (f"/tmp/{name}", f"/dev/shm/{name}", os.path.expanduser(f"~/{name}")))


def test_a_daemon_started_over_ssh_outlives_the_session(ssh_hosts):
    marker = f"sleep {random.randint(600_000, 700_000)}"  # unique, and long enough

    async def main():
        async with await connect(target(ssh_hosts, 2), wait_s=CONNECT_WAIT_S) as session:
            await session.run(f"nohup {marker} > /dev/null 2>&1 &")

    run_async(main())
    try:
        assert [p for p in ssh_hosts.processes(2) if marker in p]
    finally:
        ssh_hosts.kill_processes(2)
    assert ssh_hosts.processes(2) == []


def test_raggio_start_head_over_ssh_outlives_the_session(ssh_hosts):
    async def main():
        async with await connect(target(ssh_hosts, 1), wait_s=CONNECT_WAIT_S) as session:
            return await session.run("echo temp_dir=$RAGGIO_TEMP_DIR; "
                                     "raggio start --head --port=6379", timeout_s=60)

    try:
        result = run_async(main())
        assert result.exit_status == 0, result.output
        assert "temp_dir=\n" in result.output and ssh_hosts.ips[1] in result.output
        status = ssh_hosts.run(1, "raggio status")
        assert status.returncode == 0 and "1 node_" in status.stdout, status.stderr
        assert [p for p in ssh_hosts.processes(1) if "raggio.head" in p]
    finally:
        ssh_hosts.reset(1)
    assert ssh_hosts.run(1, "ls -A /tmp /dev/shm").stdout.split() == ["/dev/shm:", "/tmp:"]


def test_hosts_take_path_prefix_and_env_and_a_launcher_namespace_reaches_them():
    tools = tempfile.mkdtemp(dir="/var/tmp")  # not /tmp: the hosts have their own
    try:
        with open(os.path.join(tools, "mytool"), "w") as f:
            f.write("#!/bin/sh\necho mytool ran\n")
        os.chmod(os.path.join(tools, "mytool"), 0o755)
        with SshHosts(1, path_prefix=[tools], env={"EXTRA": "a b"}, launcher_ns=True) as hosts:
            ssh = ssh_argv(target(hosts), tty=False)
            login = subprocess.run(["ip", "netns", "exec", hosts.launcher_ns, *ssh,
                                    'mytool; echo "$EXTRA"; hostname -I'],
                                   capture_output=True, text=True, timeout=CONNECT_WAIT_S)
            assert login.stdout.split("\n") == ["mytool ran", "a b", hosts.ips[0] + " ", ""], (
                login.stderr)
            assert hosts.launcher_ip not in hosts.ips + [hosts.bridge_ip, hosts.unused_ip]
    finally:
        shutil.rmtree(tools)


def test_hosts_end_with_the_process_that_made_them():
    maker = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ssh_hosts import SshHosts; "
         "hosts = SshHosts(1); hosts.start(); print(hosts.tag, hosts.init_pids[0], flush=True); "
         "time.sleep(600)"],
        cwd=os.path.dirname(__file__), stdout=subprocess.PIPE, text=True)
    try:
        tag, init_pid = maker.stdout.readline().split()
    finally:
        maker.kill()
        maker.wait()
    wait_until(lambda: not psutil.pid_exists(int(init_pid))
               or psutil.Process(int(init_pid)).status() == psutil.STATUS_ZOMBIE,
               what="the dead fixture's host to end")
    remove_stale_fixtures()
    assert not os.path.exists(os.path.join(FIXTURE_ROOT, tag))
    assert f"rgb{tag}" not in subprocess.run(["ip", "link"], capture_output=True,
                                              text=True).stdout
