"""``to_raggio``: Ray's ``ray`` as the command word becomes ``raggio``, and nowhere else."""

import pytest

from raggio.launcher.node_commands import to_raggio

REWRITTEN = [
    ("ray start --head --port=6379", "raggio start --head --port=6379"),
    ("ray stop", "raggio stop"),
    ("ray", "raggio"),
    ("  ray status", "  raggio status"),
    ("ulimit -n 65536; ray start --head", "ulimit -n 65536; raggio start --head"),
    ("ulimit -c unlimited && ray start --head", "ulimit -c unlimited && raggio start --head"),
    ("ray stop || true", "raggio stop || true"),
    ("false || ray stop", "false || raggio stop"),
    ("echo x | ray job submit", "echo x | raggio job submit"),
    ("(ray stop)", "(raggio stop)"),
    ("{ ray stop; }", "{ raggio stop; }"),
    ("X=$(ray get-head-ip)", "X=$(raggio get-head-ip)"),
    ("X=`ray get-head-ip`", "X=`raggio get-head-ip`"),
    ("if ray status; then ray stop; fi", "if raggio status; then raggio stop; fi"),
    ("for i in 1 2; do ray status; done", "for i in 1 2; do raggio status; done"),
    ("FOO=1 ray start", "FOO=1 raggio start"),
    ("FOO=1 BAR='a b' ray start", "FOO=1 BAR='a b' raggio start"),
    ("sudo ray stop", "sudo raggio stop"),
    ("sudo -E ray stop", "sudo -E raggio stop"),
    ("sudo -u ubuntu ray stop", "sudo -u ubuntu raggio stop"),
    ("env RAY_X=1 ray start", "env RAY_X=1 raggio start"),
    ("nohup ray start --block &", "nohup raggio start --block &"),
    ("ray start\nray stop", "raggio start\nraggio stop"),
    ("conda activate env && ray stop", "conda activate env && raggio stop"),
    ("ray start --address=$RAY_HEAD_IP:6379", "raggio start --address=$RAY_HEAD_IP:6379"),
]

UNCHANGED = [
    "pip install ray",
    "pip install -U 'ray[default]'",
    "echo ray",
    "cat ~/ray_bootstrap_config.yaml",
    "ls ray_results",
    "ray_results/run",
    "/usr/bin/ray start",
    "raggio start --head",
    "python -c 'import ray'",
    "echo $RAY_HEAD_IP",
    "ray.init()",
    "array start",
]


@pytest.mark.parametrize("command, expected", REWRITTEN)
def test_ray_as_the_command_becomes_raggio(command, expected):
    assert to_raggio(command) == expected


@pytest.mark.parametrize("command", UNCHANGED)
def test_ray_elsewhere_is_left_alone(command):
    assert to_raggio(command) == command


def test_rewriting_twice_changes_nothing_more():
    command = "ray stop; FOO=1 ray start --head && echo ray"
    assert to_raggio(to_raggio(command)) == to_raggio(command)
