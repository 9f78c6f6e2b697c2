"""The ``alerting:`` section: its schema, its defaults, and reading it from a file.

The section (a cluster file's ``alerting:``, or a file that is the section
itself, given to ``raggio start --head --alerting-config FILE``)::

    alerting:
      enabled: true
      slack_webhook: https://hooks.slack.com/services/...
      webhook_url: https://alerts.example.com/raggio
      rules:
        task_failure_rate: {threshold: 0.2, window_s: 300, min_tasks: 10}
        object_store: {usage_threshold: 0.9}

``SCHEMA`` (JSON Schema, checked with jsonschema) defines every key once, with
its default and its meaning; an error names
the key's path and says how to fix it, and a misspelt key gets the nearest
known one. The head (``raggio/head.py``) loads and checks the file at start and
stores the filled-in section in the control store's KV (``CONFIG_KEY``), where
the dashboard's alert manager and ``raggio alerts test`` read it back
(``AlertingConfig.from_json``). Nothing here does I/O but reading the file.
"""

from __future__ import annotations

import copy
import json

#: The control store's KV key of the head's alerting section (JSON, defaults filled in).
CONFIG_KEY = "alerts:config"

_URL = {"type": "string", "pattern": "^https?://[^\\s/]+"}


def _rule(description: str, **thresholds: dict) -> dict:
    return {"type": "object", "additionalProperties": False, "description": description,
            "properties": {"enabled": {"type": "boolean", "default": True,
                                       "description": "whether the rule runs"}, **thresholds}}


def _number(default: float, description: str, minimum: float = 0,
            maximum: float | None = None, integer: bool = False) -> dict:
    schema = {"type": "integer" if integer else "number", "default": default,
              "minimum": minimum, "description": description}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "the alerting section",
    "properties": {
        "enabled": {"type": "boolean", "default": True,
                    "description": "whether alerts are sent"},
        "slack_webhook": dict(_URL, description="a Slack incoming webhook"),
        "webhook_url": dict(_URL, description="takes each alert as a JSON POST"),
        "cluster_name": {"type": "string", "description": "the cluster's name in alerts "
                         "(default: a cluster file's cluster_name, else the head's address)"},
        "check_period_s": _number(1.0, "seconds between looks at the control store's tables",
                                  minimum=0.05),
        "stats_period_s": _number(10.0, "seconds between looks at the object stores and the "
                                  "task failure rate", minimum=0.05),
        "rules": {
            "type": "object", "additionalProperties": False,
            "description": "the rules, each {enabled: true|false, ...}",
            "properties": {
                "node_died": _rule("a node left the cluster: its process or machine died"),
                "head_restarted": _rule("the control store started again on its storage"),
                "actor_died": _rule("an actor died for good, with no restarts left, "
                                    "and not by raggio.kill() or its owner's end"),
                "job_failed": _rule("a job ended FAILED"),
                "task_failure_rate": _rule(
                    "the share of task attempts that failed, among those that ended lately",
                    threshold=_number(0.2, "the failed fraction of the ended tasks",
                                      maximum=1),
                    window_s=_number(300.0, "seconds of task endings to look at",
                                     minimum=1),
                    min_tasks=_number(10, "how many ended tasks the window needs before a "
                                      "rate counts", minimum=1,
                                      integer=True)),
                "object_store": _rule(
                    "a node's object store is nearly full, or spilling to disk",
                    usage_threshold=_number(0.9, "the used fraction of the store",
                                            maximum=1),
                    spilling={"type": "boolean", "default": True,
                              "description": "alert when a store spills"}),
                "autoscaler_launch_failed": _rule("the autoscaler could not launch a node"),
            },
        },
        "delivery": {
            "type": "object", "additionalProperties": False,
            "description": "how alerts are sent",
            "properties": {
                "timeout_s": _number(10.0, "seconds one POST may take", minimum=0.1),
                "max_attempts": _number(5, "POSTs per alert before giving up",
                                        minimum=1, integer=True),
                "backoff_s": _number(1.0, "seconds before the first retry; doubled for each "
                                     "next one"),
                "max_backoff_s": _number(60.0, "the longest wait between retries"),
                "max_per_minute": _number(20, "alerts sent per minute at most; the rest are "
                                          "counted and reported", minimum=1,
                                          integer=True),
                "queue_size": _number(100, "alerts waiting per webhook at most; the oldest "
                                      "go first", minimum=1, integer=True),
            },
        },
    },
}

#: Keys of a cluster file (Ray's cluster YAML) that tell it from a bare alerting section.
_CLUSTER_FILE_KEYS = ("cluster_name", "provider", "available_node_types", "head_node_type",
                      "max_workers", "auth")


class AlertingConfig:
    """A checked ``alerting`` section with its defaults filled in (``section``)."""

    def __init__(self, section: dict):
        self.section = section

    @property
    def enabled(self) -> bool:
        return self.section["enabled"]

    @property
    def cluster_name(self) -> str | None:
        return self.section.get("cluster_name")

    @property
    def destinations(self) -> dict[str, str]:
        """``{"slack": url, "webhook": url}``, for the webhooks the section names."""
        named = {"slack": self.section.get("slack_webhook"),
                 "webhook": self.section.get("webhook_url")}
        return {kind: url for kind, url in named.items() if url}

    @property
    def delivery(self) -> dict:
        return self.section["delivery"]

    def rule(self, name: str) -> dict | None:
        """The settings of rule ``name``; None when it is off."""
        settings = self.section["rules"][name]
        return settings if settings["enabled"] else None

    def to_json(self) -> bytes:
        return json.dumps(self.section).encode()

    @classmethod
    def from_json(cls, value: bytes) -> "AlertingConfig":
        """The section the head stored (checked there already)."""
        return cls(json.loads(value))


def check(section, source: str = "the alerting section",
          cluster_name: str | None = None) -> AlertingConfig:
    """Check ``section`` against ``SCHEMA`` and fill in its defaults.

    Args:
        section: the parsed ``alerting`` mapping.
        source: where it came from, for messages (a file's path).
        cluster_name: the cluster file's ``cluster_name``, unless the section names one.

    Raises:
        ValueError: the first problem, naming the key (``alerting.rules.x.threshold``), the
            value and what a valid one is.
    """
    import jsonschema  # here: the head imports this module only when it has a file to check

    if section is None:
        section = {}
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(section),
                    key=lambda error: (list(error.absolute_path), error.validator))
    if errors:
        raise ValueError(f"{source}: {_describe(errors[0])}")
    filled = _with_defaults(SCHEMA, copy.deepcopy(section))
    if cluster_name and "cluster_name" not in filled:
        filled["cluster_name"] = cluster_name
    config = AlertingConfig(filled)
    if config.enabled and not config.destinations:
        raise ValueError(f"{source}: alerting is enabled but names no webhook; set "
                         "alerting.slack_webhook or alerting.webhook_url (or enabled: false).")
    return config


def load_file(path: str) -> AlertingConfig:
    """The alerting section of the YAML file at ``path``: a cluster file's ``alerting:``, or
    the file itself when it is the section alone.

    Raises:
        ValueError: the file cannot be read or parsed, has no alerting section, or the
            section is not valid (see ``check``).
    """
    import yaml

    try:
        with open(path) as file:
            document = yaml.safe_load(file)
    except OSError as exc:
        raise ValueError(f"Cannot read the alerting config {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if document is not None and not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping (the alerting section, or a cluster "
                         f"file with an `alerting:` section), found a {type(document).__name__}.")
    document = document or {}
    if "alerting" in document:
        return check(document["alerting"], path, document.get("cluster_name"))
    if any(key in document for key in _CLUSTER_FILE_KEYS):
        raise ValueError(f"{path} is a cluster file without an `alerting:` section; add one "
                         "(alerting: {slack_webhook: ..., webhook_url: ...}).")
    return check(document, path)


def _with_defaults(schema: dict, value):
    """``value`` with the defaults of ``schema``'s properties added where it has none (a
    mapping's default: its own defaults)."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    for name, sub in schema.get("properties", {}).items():
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
        elif name not in value and sub.get("type") == "object":
            value[name] = {}
        if name in value:
            value[name] = _with_defaults(sub, value[name])
    return value


def _describe(error) -> str:
    """One jsonschema error as a sentence naming the key and the fix."""
    path = ".".join(["alerting", *map(str, error.absolute_path)])
    schema = error.schema
    if error.validator == "additionalProperties":
        import difflib  # only for a misspelt key

        known = list(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        key = unknown[0]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (f"unknown key {path}.{key}.{hint} Known keys of {path}: "
                f"{', '.join(known)}.")
    meaning = f" ({schema['description']})" if "description" in schema else ""
    return f"{path} is {json.dumps(error.instance)}; it must be {_valid(schema)}{meaning}."


def _valid(schema: dict) -> str:
    """What a valid value of ``schema`` is, in words."""
    kind = schema.get("type")
    if kind == "object":
        return f"a mapping with any of the keys {', '.join(schema['properties'])}"
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return "an http:// or https:// URL" if "pattern" in schema else "a string"
    words = "a whole number" if kind == "integer" else "a number"
    if "maximum" in schema:
        return f"{words} from {schema['minimum']:g} to {schema['maximum']:g}"
    return f"{words} >= {schema['minimum']:g}"
