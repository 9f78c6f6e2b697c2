"""What starting a node takes, defined once: ``NodeSpec``, its command line and environment.

A node runs as a process: ``python -m raggio.head`` for a head (the control
store, and the head's node beside it unless ``no_node``), or
``python -m raggio.node.main`` for a node that joins a control store. Every
starter describes the node as a ``NodeSpec`` and runs it with
``spec.start_process()`` (or ``spec.to_argv()`` and ``spec.to_env()`` where
it runs commands itself): ``init()``'s private head
(``core/init_options.py``), ``raggio start`` (``cli/start.py``) and
``cluster_utils.Cluster``; the launcher and the autoscaler start theirs the
same way. The process reads the spec back with ``NodeSpec.from_argv`` and its
settings from ``Config`` (the environment), then prints its ready line
(``launch.py``).

The flags are the fields' names (``--num-cpus``, ``--node-ip-address``,
``--temp-dir``...), as ``raggio start`` spells them. The token and ``Config``
settings travel as ``RAGGIO_*`` environment variables, never on the command
line, which ``ps`` shows to every user of the machine. What the fields do not
say (the resources a machine has, the timeouts) the process takes from
``Config`` and ``node/node_info.py``, so a spec states only the choices.

No I/O and nothing heavy to import: every start path reads this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

from raggio.common.ids import NodeID
from raggio.config import DEFAULT_DASHBOARD_PORT, get_config, system_config_env

#: The modules a node's process runs (``NodeSpec.module``).
HEAD_MODULE = "raggio.head"
NODE_MODULE = "raggio.node.main"
#: ``gcs_address`` of a node that reads its control store's address and token as one JSON
#: line on stdin: ``raggio start --head`` starts the head's node while its control store
#: starts, and sends them once the control store is up.
FROM_STDIN = "-"


def _json_object(text: str) -> dict:
    import argparse  # only a started process parses flags
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def _flag(doc: str, default=None, *, parse=None, **kwargs):
    """A field written on the command line as ``--<name>``; ``parse`` reads its value back
    (default: the default's type; a bool is a switch, a dict JSON)."""
    if isinstance(default, dict):
        kwargs["default_factory"], parse = dict, _json_object
    elif "default_factory" not in kwargs:
        kwargs["default"] = default
    return field(metadata={"doc": doc, "parse": parse or type(default)}, **kwargs)


def _env(doc: str, default):
    """A field given to the process in its environment."""
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"doc": doc, "env": True})
    return field(default=default, metadata={"doc": doc, "env": True})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface only."""
    return host == "localhost" or host.startswith("127.") or host == "::1"


@dataclass
class NodeSpec:
    """One node to start. See the module docstring.

    ``NodeSpec(head=True)`` is a head (control store and node in one process);
    ``NodeSpec(gcs_address="HOST:PORT", token=...)`` a node joining the cluster there.

    Raises:
        ValueError: a node that is neither a head nor given a control store to join, or
            ``no_node`` on a node that joins one.
    """

    # -- its role
    head: bool = _flag("The head node (it holds node:__internal_head__). Without "
                       "--gcs-address its process runs the control store too.", False)
    gcs_address: str = _flag(
        f'The control store to join: HOST:PORT, or "{FROM_STDIN}" to read '
        '{"gcs_address": ..., "token": ...} as one JSON line on stdin; empty for a head, '
        "which runs its own.", "")
    # -- the control store (a head that runs its own)
    port: int = _flag("The control store's port (0: any free one).", 0)
    storage: str = _flag("The control store's backend: memory, a SQLite path, "
                         "redis://HOST:PORT.", "memory")
    no_node: bool = _flag("Run only the control store (`raggio start --head` runs the head "
                          "node as its own process, so that each survives the other's "
                          "restart).", False)
    cluster_file: bool = _flag("Record this head as the machine's current cluster.", False)
    include_dashboard: bool = _flag("Run the dashboard beside the control store "
                                    "(`raggio start --head` and init() do by default).", False)
    dashboard_host: str = _flag("The dashboard's address (Ray's default: loopback only).",
                                "127.0.0.1")
    dashboard_port: int = _flag("The dashboard's port (0: any free one).",
                                DEFAULT_DASHBOARD_PORT)
    dashboard_port_search: bool = _flag(
        "Take the next free port when the dashboard's is in use (init()'s private cluster, "
        "as Ray); otherwise that is an error naming --dashboard-port.", False)
    ray_client_server_port: int | None = _flag(
        "The ray:// client server's port (0: any free one; none: no client server).",
        parse=int)
    alerting_config: str = _flag("A YAML file of alert rules and webhooks: a cluster file's "
                                 "`alerting:` section, or that section alone.", "")
    monitoring_config: str = _flag("A YAML file whose `monitoring_config:` section (or the file "
                                   "itself) says what to run for monitoring (Prometheus).", "")
    autoscaling_config: str = _flag("A cluster file (the launcher's bootstrap config), checked "
                                    "and kept in the control store for the autoscaler.", "")
    # -- the node (Ray's names; what is not given the node takes from the machine)
    node_ip_address: str = _flag("The node's address.", "127.0.0.1")
    num_cpus: float | None = _flag("CPUs (default: the machine's).", parse=float)
    num_gpus: float | None = _flag("GPUs (default: the ones detected).", parse=float)
    resources: dict = _flag("Custom resources as a JSON object: {\"name\": 1}.", {})
    labels: dict = _flag("Labels as a JSON object of strings.", {})
    memory: int | None = _flag("Memory for tasks, in bytes (default: 0.7 of the machine's).",
                               parse=int)
    object_store_memory: int | None = _flag(
        "Object store size, in bytes (default: Config.object_store_fraction of memory).",
        parse=int)
    metrics_export_port: int = _flag("The port of the node's Prometheus endpoint "
                                     "(0: any free one).", 0)
    node_manager_port: int = _flag("The port of the node manager, which objects move over "
                                   "too (0: any free one).", 0)
    node_id: str = _flag("The node's id in hex (default: a new random one): chosen by a starter "
                         "that records the node before it runs (the fake_multinode provider).",
                         "")
    # -- its process
    temp_dir: str = _flag("Where session directories live (default: Config.temp_dir).",
                          parse=str, default_factory=lambda: get_config().temp_dir)
    session_dir: str | None = _flag("Use this session directory instead of making a new one.",
                                    parse=str)
    tied: bool = _flag("Exit when stdin closes (a node owned by the process that started it).",
                       False)
    # -- its environment
    token: str = _env("The cluster token (RAGGIO_AUTH_TOKEN); empty: the starter's own.", "")
    config: dict = _env("Config settings of the node and its workers, {field name: value} "
                        "(RAGGIO_<NAME>): Ray's cluster-wide _system_config.", {})
    env: dict = _env("More environment variables of the node and its workers (PYTHONPATH).",
                     {})

    def __post_init__(self):
        if not self.head and not self.gcs_address:
            raise ValueError("A node that is not the head joins a control store: give its "
                             "address (gcs_address='HOST:PORT').")
        if self.no_node and self.gcs_address:
            raise ValueError("no_node runs only a control store, which a node that joins "
                             f"one at {self.gcs_address} does not run.")
        if self.node_id and not NodeID.is_hex(self.node_id):
            raise ValueError(f"node_id is {NodeID.size} bytes in hex ({2 * NodeID.size} "
                             f"digits), not {self.node_id!r}.")

    def set_dashboard(self, host: str, port: int | None) -> None:
        """Run the dashboard on ``host:port``; ``port=None``: Ray's default port, or the next
        free one after it when that is taken (what Ray does when no port is given)."""
        self.include_dashboard = True
        self.dashboard_host = host
        self.dashboard_port = DEFAULT_DASHBOARD_PORT if port is None else port
        self.dashboard_port_search = port is None

    def dashboard_warning(self) -> str | None:
        """The warning to give when this head's dashboard is reachable from the network."""
        if not self.include_dashboard or is_loopback(self.dashboard_host):
            return None
        return (f"The dashboard listens on {self.dashboard_host}, so it is reachable from the "
                "network: anyone who has the cluster token can run code on this cluster "
                "through it. Keep the token secret, or pass --dashboard-host=127.0.0.1 "
                "(init(dashboard_host='127.0.0.1')) and reach it through an SSH tunnel.")

    @property
    def module(self) -> str:
        """The module the process runs: a head that runs its control store, or a node."""
        return NODE_MODULE if self.gcs_address else HEAD_MODULE

    def to_argv(self) -> list[str]:
        """The process's command line: ``[python, "-m", module, flags...]``. A flag is written
        when its value is not the default (``temp_dir`` always: the starter's)."""
        argv = [sys.executable, "-m", self.module]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if (f.metadata.get("env") or value is None or value is False or value == {}
                    or value == f.default):
                continue
            flag = "--" + f.name.replace("_", "-")
            if value is True:
                argv.append(flag)
            else:
                argv += [flag, json.dumps(value) if isinstance(value, dict) else str(value)]
        return argv

    def to_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The process's environment: ``base`` (default: this process's) with ``env``,
        ``config`` as ``RAGGIO_*`` variables, and the token."""
        environ = dict(os.environ if base is None else base)
        environ.update(self.env)
        environ.update(system_config_env(self.config))
        if self.token:
            environ["RAGGIO_AUTH_TOKEN"] = self.token
        return environ

    def start_process(self, **popen_kwargs) -> subprocess.Popen:
        """Start the node's process. Its ready line comes on its stdout
        (``launch.wait_ready``); its stdin is a pipe when it is ``tied`` or reads its control
        store there, else /dev/null. ``popen_kwargs``: more of ``subprocess.Popen``'s."""
        stdin = (subprocess.PIPE if self.tied or self.gcs_address == FROM_STDIN
                 else subprocess.DEVNULL)
        return subprocess.Popen(self.to_argv(), stdin=stdin, stdout=subprocess.PIPE,
                                env=self.to_env(), **popen_kwargs)

    @classmethod
    def from_argv(cls, argv: list[str], module: str | None = None) -> "NodeSpec":
        """The spec a process was started with, from its flags (``to_argv()`` after the
        module); the environment fields stay empty (``Config`` reads them). With ``module``,
        a spec that module does not run is a usage error.

        Raises:
            SystemExit: a usage error (argparse prints it, exit code 2).
        """
        # Imported here: the starters (init(), the CLI) never parse, and it costs them ~5 ms.
        import argparse
        parser = argparse.ArgumentParser(prog=f"python -m {module or NODE_MODULE}",
                                         argument_default=argparse.SUPPRESS)
        for f in dataclasses.fields(cls):
            if f.metadata.get("env"):
                continue
            flag, parse = "--" + f.name.replace("_", "-"), f.metadata["parse"]
            if parse is bool:
                parser.add_argument(flag, action="store_true", help=f.metadata["doc"])
            else:
                parser.add_argument(flag, type=parse, help=f.metadata["doc"])
        try:
            spec = cls(**vars(parser.parse_args(argv)))
        except ValueError as exc:
            parser.error(str(exc))
        if module is not None and spec.module != module:
            parser.error(f"this spec runs as python -m {spec.module}, not {module}")
        return spec
