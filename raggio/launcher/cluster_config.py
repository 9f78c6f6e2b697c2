"""Reading a cluster file: check it, fill Ray's defaults, and bring both dialects to one shape.

``load(path)`` reads a cluster YAML in Ray's dialect or the seed's (``schema.py``),
checks it against ``schema.SCHEMA``, and returns a ``ClusterConfig`` in Ray's shape
(``available_node_types`` + ``head_node_type``), so that the launcher and the autoscaler
read one shape. A mistake raises ``ClusterConfigError`` with one paragraph: the file and
line, the key's path, what was expected, and "did you mean" for a misspelt key.

Defaults are Ray's (its ``prepare_config``): the local provider keeps every worker_ip in
the cluster (the worker type's min_workers = max_workers = len(worker_ips)), a head type's
max_workers is 0, another type's defaults to the global max_workers, and the local
provider's start commands are its defaults.yaml's. The seed's ``head_node`` and
``worker_nodes`` become the node types ``ray-legacy-head-node-type`` and
``ray-legacy-worker-node-type`` (the names Ray gives its legacy form), and each
``worker_node_types`` entry a type of its ``name``. **Departure:** Ray refuses
``head_node``, ``worker_nodes`` and ``available_node_types`` with the local provider
("not supported for on-premise clusters"); raggio takes them, so nodes get the resources
the file gives. ``docker:`` is checked but the launcher does not run containers yet: a
file that asks for an image is refused.

``ClusterConfig.raw`` is the normalised document (JSON-able): it is what the launcher
writes to the head as the bootstrap config, and it loads back to the same config.
Not owned here: running anything on the nodes (``updater.py``), the ``ray`` in command
strings (``node_commands.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os

from raggio.exceptions import ClusterConfigError
from raggio.launcher.schema import (BYTE_RESOURCES, LOCAL_START_COMMANDS, QUANTITY_PATTERN,
                                    SCHEMA, parse_quantity)

#: The control store's KV key of the head's cluster config (``raw`` as JSON), which
#: ``raggio start --head --autoscaling-config=FILE`` stores for the autoscaler.
CONFIG_KEY = "autoscaler:config"
#: The node types of the seed's (Ray's legacy) head_node / worker_nodes (Ray's names).
LEGACY_HEAD_TYPE = "ray-legacy-head-node-type"
LEGACY_WORKER_TYPE = "ray-legacy-worker-node-type"
#: The one node type of Ray's local provider, for the head and the workers alike.
LOCAL_NODE_TYPE = "local.cluster.node"
#: Ray's node types for a cloud provider's file that names none.
DEFAULT_HEAD_TYPE, DEFAULT_WORKER_TYPE = "ray.head.default", "ray.worker.default"
#: Keys of the seed's dialect, replaced by available_node_types in ``raw``.
_SEED_KEYS = ("head_node", "worker_nodes", "worker_node_types", "min_workers")
#: ClusterConfig's fields that are the file's keys as filled in, unchanged.
_AS_FILLED = ("max_workers", "upscaling_speed", "idle_timeout_minutes", "file_mounts",
              "rsync_exclude", "rsync_filter", "initialization_commands", "setup_commands",
              "head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
              "worker_start_ray_commands", "docker", "autoscaling_config")


@dataclasses.dataclass(frozen=True)
class NodeType:
    """One node type: what its nodes are (``node_config``, ``resources``) and how many."""

    name: str
    node_config: dict
    resources: dict[str, float]  #: memory and object_store_memory in bytes
    labels: dict[str, str]
    min_workers: int
    max_workers: int
    use_spot: bool = False
    spot_price: float | None = None
    #: This type's own worker_setup_commands, instead of the file's; None: the file's.
    worker_setup_commands: list[str] | None = None


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """A checked cluster file in Ray's shape, with Ray's defaults filled in."""

    path: str
    cluster_name: str
    provider: dict
    auth: dict  #: ssh_user, ssh_private_key (absolute path, or None: ssh's own), ssh_port
    node_types: dict[str, NodeType]
    head_node_type: str
    max_workers: int
    upscaling_speed: float
    idle_timeout_minutes: float
    file_mounts: dict[str, str]  #: remote path -> absolute local path
    rsync_exclude: list[str]
    rsync_filter: list[str]
    initialization_commands: list[str]
    setup_commands: list[str]
    head_setup_commands: list[str]
    worker_setup_commands: list[str]
    head_start_ray_commands: list[str]
    worker_start_ray_commands: list[str]
    docker: dict
    monitoring_config: dict | None
    alerting: dict | None  #: the alerting section with its defaults (alerts/config.py)
    autoscaling_config: dict
    raw: dict  #: the normalised document, JSON-able; loads back to this config

    def setup_commands_for(self, is_head: bool, node_type: str | None = None) -> list[str]:
        """The setup commands of the head, or of a worker (of ``node_type``, whose own
        worker_setup_commands win): setup_commands then the role's (as Ray merges them).
        The initialization_commands, which run before, are not among them."""
        own = self.worker_setup_commands
        if is_head:
            own = self.head_setup_commands
        elif node_type is not None and self.node_types[node_type].worker_setup_commands is not None:
            own = self.node_types[node_type].worker_setup_commands
        return [*self.setup_commands, *own]

    def start_commands_for(self, is_head: bool) -> list[str]:
        """The commands that start raggio on the head, or on a worker (as the file writes
        them: ``node_commands.to_raggio`` turns Ray's ``ray`` into ``raggio``)."""
        return list(self.head_start_ray_commands if is_head else self.worker_start_ray_commands)

    def worker_types(self) -> list[NodeType]:
        """The types whose nodes are workers: every type but the head's, and the head's too
        when it may have workers (the local provider's one type)."""
        return [t for t in self.node_types.values()
                if t.name != self.head_node_type or t.max_workers > 0]

    def to_json(self) -> bytes:
        return json.dumps(self.raw).encode()


def load(path: str, overrides: dict | None = None) -> ClusterConfig:
    """The cluster file at ``path``, checked and normalised.

    Args:
        path: a YAML (or JSON) cluster file, in Ray's dialect or the seed's.
        overrides: top-level keys that replace the file's (``raggio up --max-workers``).

    Raises:
        ClusterConfigError: the file cannot be read, is not YAML, or is not a cluster file
            raggio can run; the message names the line, the key and the fix.
    """
    try:
        with open(path) as file:
            text = file.read()
    except OSError as exc:
        raise ClusterConfigError(f"Cannot read the cluster file {path}: {exc.strerror}.") from None
    return parse(text, os.path.abspath(path), overrides)


def parse(text: str, source: str, overrides: dict | None = None) -> ClusterConfig:
    """The cluster config in ``text`` (YAML or JSON: the KV's ``CONFIG_KEY`` value too);
    ``source`` names it in messages. See ``load``."""
    import yaml  # here: the head imports this module only when it is given a file

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ClusterConfigError(f"{where}: not valid YAML: {problem}.") from None
    if not isinstance(document, dict):
        raise ClusterConfigError(
            f"{source}: a cluster file is a mapping of keys (cluster_name, provider, ...), "
            f"not {'an empty file' if document is None else type(document).__name__}.")
    overridden = {key for key, value in (overrides or {}).items() if value is not None}
    document.update({key: overrides[key] for key in overridden})
    where = _Locator(source, _key_lines(node), overridden)
    _check_schema(document, where)
    return _build(copy.deepcopy(document), where)


class _Locator:
    """``file:line`` of a key path, from the YAML nodes' marks."""

    def __init__(self, source: str, lines: dict[tuple, int], overridden: set[str]):
        self.source = source
        self.lines = lines
        self.overridden = overridden

    def __call__(self, path: tuple) -> str:
        if path and path[0] in self.overridden:
            return f"{self.source} (`{path[0]}` given on the command line)"
        line = self.line(path)
        return f"{self.source}:{line}" if line else self.source

    def line(self, path: tuple) -> int:
        """The line of ``path``, else of its nearest parent in the file; 0: none."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 0

    def error(self, path: tuple, problem: str) -> ClusterConfigError:
        return ClusterConfigError(f"{self(path)}: {problem}")


def _key_lines(node, path: tuple = ()) -> dict[tuple, int]:
    """The line (1-based) of every key and list item under a composed YAML node."""
    import yaml

    lines = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[path + (key.value,)] = key.start_mark.line + 1
            lines.update(_key_lines(value, path + (key.value,)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            lines.update(_key_lines(item, path + (index,)))
    return lines


def dotted(path) -> str:
    """``("worker_node_types", 0, "resources")`` -> ``worker_node_types[0].resources``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "the file's top level"


# -- the schema's errors in words


def _check_schema(document: dict, where: _Locator) -> None:
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    if not errors:
        return
    described = sorted((problem for error in errors for problem in _describe(error, where)),
                       key=lambda item: where.line(item[0]))
    _, first_where, first = described[0]
    message = f"{first_where}: {first}"
    if len(described) > 1:
        others = ", ".join(f"{place} ({where(path)})" for path, place in
                           ((p, dotted(p)) for p, _, _ in described[1:6]))
        more = f" and {len(described) - 6} more" if len(described) > 6 else ""
        message += f" The file has {len(described) - 1} more problem(s): {others}{more}."
    raise ClusterConfigError(message)


def _describe(error, where: _Locator) -> list[tuple[tuple, str, str]]:
    """(the key's path, its place, one sentence) for each problem of one jsonschema error."""
    path, schema = tuple(error.absolute_path), error.schema
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        parent = f"`{dotted(path)}`" if path else "the file's top level"
        problems = []
        for key in sorted(set(error.instance) - set(known), key=str):
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (f"did you mean `{close[0]}`?" if close else
                    f"the keys it takes are {', '.join(known)}." if path else
                    "see examples/clusters/ for the keys a cluster file takes.")
            problems.append((path + (key,), where(path + (key,)),
                             f"unknown key `{key}` in {parent}: {hint}"))
        return problems
    if error.validator == "required":
        missing = [key for key in schema["required"] if key not in error.instance][0]
        about = _about(schema.get("properties", {}).get(missing, {}))
        return [(path + (missing,), where(path),
                 f"`{dotted(path + (missing,))}` is missing: add it{about}.")]
    return [(path, where(path), f"`{dotted(path)}` is {json.dumps(error.instance)}: expected "
             f"{_expected(schema)}{_about(schema)}.")]


def _about(schema: dict) -> str:
    """`` (what the key means)``, from its schema's description; empty without one."""
    text = schema.get("description", "").rstrip(".")
    return f" ({text[:1].lower()}{text[1:]})" if text else ""


def _expected(schema: dict) -> str:
    """What a valid value of ``schema`` is, in words."""
    if "const" in schema:
        return json.dumps(schema["const"])
    if schema.get("pattern") == QUANTITY_PATTERN:
        return ("a number >= 0, or one with a suffix: 16Gi, 500Mi (powers of 1024), 2G "
                "(powers of 1000), 500m (thousandths)")
    words = {"integer": "a whole number", "number": "a number", "string": "a string",
             "boolean": "true or false", "object": "a mapping of keys to values",
             "array": "a list", "null": "nothing"}
    kinds = schema.get("type", [])
    text = " or ".join(words[kind] for kind in ([kinds] if isinstance(kinds, str) else kinds))
    if schema.get("items", {}).get("type") == "string":
        text = "a list of strings"
    if schema.get("minLength"):
        text = "a non-empty string"
    if "minimum" in schema and "maximum" in schema:
        text += f" from {schema['minimum']} to {schema['maximum']}"
    elif "minimum" in schema:
        text += f" >= {schema['minimum']}"
    return text or "a valid value"


# -- defaults and the two dialects


def _build(document: dict, where: _Locator) -> ClusterConfig:
    """The checked ``document``, normalised to Ray's shape with defaults filled in."""
    _refuse_docker(document, where)
    provider = document["provider"]
    local = provider["type"] == "local"
    if local:
        provider.setdefault("worker_ips", [])
    policy = document.get("autoscaling_config") or {}
    for key in ("max_workers", "idle_timeout_minutes", "upscaling_speed"):
        if key not in document and key in policy:
            document[key] = policy[key]
    if local:
        document.setdefault("max_workers", len(provider["worker_ips"]))
        for key, commands in LOCAL_START_COMMANDS.items():
            document.setdefault(key, list(commands))
    for key, schema in SCHEMA["properties"].items():
        if key not in document and "default" in schema:
            document[key] = copy.deepcopy(schema["default"])
    node_types, head = _node_types(document, where, local)
    for key in _SEED_KEYS:
        document.pop(key, None)
    document["available_node_types"] = node_types
    document["head_node_type"] = head
    auth = _auth(document["auth"], where, local)
    document["auth"] = {key: value for key, value in auth.items() if value is not None}
    document["file_mounts"] = {remote: _local_path(local_path) for remote, local_path
                               in document["file_mounts"].items()}
    if "alerting" in document:
        document["alerting"] = _alerting(document, where)
    return ClusterConfig(
        path=where.source, cluster_name=document["cluster_name"], provider=provider,
        auth=auth, head_node_type=head,
        node_types={name: NodeType(name=name, **spec) for name, spec in node_types.items()},
        monitoring_config=document.get("monitoring_config"),
        alerting=document.get("alerting"), raw=copy.deepcopy(document),
        **{key: document[key] for key in _AS_FILLED})


def _refuse_docker(document: dict, where: _Locator) -> None:
    """Docker is in use where an image or container is named (as Ray decides)."""
    sections = [(("docker",), document.get("docker") or {})]
    sections += [(("available_node_types", name, "docker"), spec.get("docker") or {})
                 for name, spec in (document.get("available_node_types") or {}).items()]
    for path, docker in sections:
        named = [key for key in ("image", "head_image", "worker_image", "container_name")
                 if docker.get(key)]
        if named:
            raise where.error(path + (named[0],), (
                f"`{dotted(path)}` asks for a container (`{named[0]}`): docker is not "
                "supported by raggio's launcher yet; remove the section and install what "
                "the image holds with setup_commands."))


def _node_types(document: dict, where: _Locator, local: bool) -> tuple[dict, str]:
    """``available_node_types`` (each type filled in) and the head's type."""
    legacy = [key for key in ("head_node", "worker_nodes") if key in document]
    if "available_node_types" in document:
        if legacy:
            raise where.error((legacy[0],), (
                f"`{legacy[0]}` is the legacy form of available_node_types, and the file has "
                "both: move its settings into a node type of available_node_types."))
        types = {name: _type(spec, ("available_node_types", name), where)
                 for name, spec in document["available_node_types"].items()}
        head = _head_type(document, types, where)
    else:
        if "head_node_type" in document:
            raise where.error(("head_node_type",), (
                "`head_node_type` names a type of available_node_types, which the file does "
                "not have: add available_node_types, or remove head_node_type."))
        if legacy or "worker_node_types" in document:
            head = LEGACY_HEAD_TYPE
            types = {head: _type(document.get("head_node") or {}, ("head_node",), where,
                                 node_config_form=True)}
            if "worker_nodes" in document or "worker_node_types" not in document:
                types[LEGACY_WORKER_TYPE] = _type(document.get("worker_nodes") or {},
                                                  ("worker_nodes",), where,
                                                  node_config_form=True)
        elif local:
            head, types = LOCAL_NODE_TYPE, {LOCAL_NODE_TYPE: _type({}, (), where)}
        else:
            head = DEFAULT_HEAD_TYPE
            types = {DEFAULT_HEAD_TYPE: _type({}, (), where),
                     DEFAULT_WORKER_TYPE: _type({}, (), where)}
    for index, item in enumerate(document.get("worker_node_types", [])):
        path = ("worker_node_types", index)
        if item["name"] in types:
            raise where.error(path + ("name",), (
                f"`{dotted(path + ('name',))}` is {item['name']!r}, a name another node type "
                "has already: give each type its own name."))
        spec = {key: item[key] for key in ("resources", "labels", "min_workers", "max_workers",
                                           "use_spot", "spot_price") if key in item}
        spec["node_config"] = dict(item.get("node_config") or {})
        if "instance_type" in item:
            spec["node_config"]["InstanceType"] = item["instance_type"]
        types[item["name"]] = _type(spec, path, where)
    _fill_counts(document, types, head, where, local)
    return types, head


def _head_type(document: dict, types: dict, where: _Locator) -> str:
    head = document.get("head_node_type")
    if head is None:
        raise where.error(("available_node_types",), (
            "`head_node_type` is missing: with available_node_types, name the head's type "
            f"(one of {', '.join(types)})."))
    if head not in types:
        close = difflib.get_close_matches(head, list(types), n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise where.error(("head_node_type",), (
            f"`head_node_type` is {head!r}, which is not a type of available_node_types "
            f"({', '.join(types)}).{hint}"))
    return head


def _type(spec: dict, path: tuple, where: _Locator, node_config_form: bool = False) -> dict:
    """A node type's fields, resources as numbers. ``node_config_form``: ``spec`` is the
    legacy head_node/worker_nodes, the node config itself with ``resources`` beside it."""
    spec = dict(spec)
    if node_config_form:
        resources = spec.pop("resources", None) or {}
        spec = {"node_config": spec, "resources": resources}
    resources = {}
    for name, amount in (spec.get("resources") or {}).items():
        key_path = path + ("resources", name)
        try:
            number = parse_quantity(amount, dotted(key_path))
        except ValueError as exc:
            raise where.error(key_path, f"{exc}.") from None
        resources[name] = int(number) if name in BYTE_RESOURCES else float(number)
    filled = {"node_config": spec.get("node_config") or {}, "resources": resources,
              "labels": spec.get("labels") or {}, "use_spot": spec.get("use_spot", False)}
    for key in ("spot_price", "min_workers", "max_workers", "worker_setup_commands"):
        if key in spec:
            filled[key] = spec[key]
    filled["_path"] = path  # dropped by _fill_counts, after its messages
    return filled


def _fill_counts(document: dict, types: dict, head: str, where: _Locator,
                 local: bool) -> None:
    """min_workers and max_workers of every type, as Ray fills them, and their checks."""
    max_workers = document["max_workers"]
    workers = [name for name in types if name != head] or [head]
    if "min_workers" in document:
        if len(workers) > 1:
            raise where.error(("min_workers",), (
                "a top-level `min_workers` applies to a file with one worker node type, and "
                f"this one has {len(workers)} ({', '.join(workers)}): set min_workers on "
                "each type instead."))
        types[workers[0]].setdefault("min_workers", document["min_workers"])
    if local and len(workers) == 1:
        # Ray's local provider keeps every listed machine in the cluster.
        ips = len(document["provider"]["worker_ips"])
        types[workers[0]].setdefault("min_workers", ips)
        types[workers[0]].setdefault("max_workers", max_workers)
        if types[workers[0]]["min_workers"] > ips:
            raise where.error(types[workers[0]]["_path"] or ("provider", "worker_ips"), (
                f"node type {workers[0]!r} has min_workers={types[workers[0]]['min_workers']}"
                f", but provider.worker_ips lists {ips} machine(s): add their "
                "addresses to worker_ips, or lower min_workers."))
    for name, spec in types.items():
        spec.setdefault("min_workers", 0)
        spec.setdefault("max_workers", 0 if name == head else max_workers)
        path = spec.pop("_path")
        if spec["min_workers"] > spec["max_workers"]:
            raise where.error(path or ("max_workers",), (
                f"node type {name!r} has min_workers={spec['min_workers']} above its "
                f"max_workers={spec['max_workers']}: raise max_workers or lower min_workers."))
    wanted = sum(spec["min_workers"] for name, spec in types.items())
    if wanted > max_workers:
        raise where.error(("max_workers",), (
            f"the node types' min_workers add up to {wanted}, above the cluster's "
            f"max_workers={max_workers}: raise max_workers, or lower a type's min_workers."))


def _auth(auth: dict, where: _Locator, local: bool) -> dict:
    if local and "ssh_user" not in auth:
        raise where.error(("auth",), (
            "`auth.ssh_user` is missing: the local provider logs in to head_ip and "
            "worker_ips over SSH as this user (auth: {ssh_user: ..., ssh_private_key: ...})."))
    key = auth.get("ssh_private_key")
    return {**auth, "ssh_user": auth.get("ssh_user", "ubuntu"),
            "ssh_private_key": _local_path(key) if key else None,
            "ssh_port": auth.get("ssh_port", 22)}


def _local_path(path: str) -> str:
    """A path on this machine, absolute (``~`` expanded; relative to the working directory,
    as Ray resolves it)."""
    return os.path.abspath(os.path.expanduser(path))


def _alerting(document: dict, where: _Locator) -> dict:
    from raggio.alerts.config import check

    try:
        return check(document["alerting"], where(("alerting",)),
                     document.get("cluster_name")).section
    except ValueError as exc:
        raise ClusterConfigError(str(exc)) from None
