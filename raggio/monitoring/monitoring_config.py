"""The ``monitoring_config`` section of a cluster file: what the head runs for monitoring.

``raggio start --head --monitoring-config FILE`` names a cluster YAML with a
``monitoring_config:`` section, or a file that is the section itself::

    monitoring_config:
      prometheus:
        enabled: true
        port: 9090        # default 9090; 0: any free port

``load`` reads and checks it (jsonschema) before the head is ready, so that a
mistake fails the start with the key at fault and how to fix it.
``head_monitoring.py`` acts on it. Not owned here: the cluster file's other
sections (the launcher's, ``alerting:``).
"""

from __future__ import annotations

import dataclasses

from raggio.monitoring.prometheus import DEFAULT_PORT

SECTION = "monitoring_config"

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "prometheus": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            },
        },
    },
}


@dataclasses.dataclass(frozen=True)
class MonitoringConfig:
    prometheus_enabled: bool = False
    prometheus_port: int = DEFAULT_PORT


def load(path: str) -> MonitoringConfig:
    """The ``monitoring_config`` of the YAML file at ``path``.

    Raises:
        ValueError: the file cannot be read, is not YAML, or its section breaks the
            schema; the message names the file, the key and the fix.
    """
    # Here, not at the top: the head imports this module, and only a head given a file
    # pays for yaml and jsonschema (~0.1 s).
    import jsonschema
    import yaml

    try:
        with open(path) as f:
            document = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--monitoring-config {path}: cannot read it: {exc}") from None
    section = document.get(SECTION, document) if isinstance(document, dict) else document
    if section is None:  # an empty file or `monitoring_config:` with nothing under it
        section = {}
    try:
        jsonschema.validate(section, SCHEMA)
    except jsonschema.ValidationError as exc:
        in_section = isinstance(document, dict) and SECTION in document
        raise ValueError(f"--monitoring-config {path}: {_explain(exc, in_section)}") from None
    prometheus = section.get("prometheus") or {}
    return MonitoringConfig(prometheus_enabled=prometheus.get("enabled", False),
                            prometheus_port=prometheus.get("port", DEFAULT_PORT))


def _explain(error, in_section: bool) -> str:
    """One sentence: which key is wrong and how to write it. ``in_section``: the file has a
    ``monitoring_config:`` section (else it was read as the section itself)."""
    key = ".".join([SECTION, *map(str, error.absolute_path)])
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        where = (f"`{key}`" if error.absolute_path or in_section
                 else f"the file, which has no `{SECTION}:` section")
        return (f"unknown key {', '.join(map(repr, unknown))} in {where}; the keys it takes "
                f"are {', '.join(known)}, e.g. `{SECTION}: {{prometheus: {{enabled: true, "
                f"port: {DEFAULT_PORT}}}}}`.")
    expected = {"boolean": "true or false", "object": "a mapping of keys to values",
                "integer": "a whole number"}.get(error.schema.get("type"), error.message)
    if error.validator in ("minimum", "maximum"):
        expected = "a port number from 0 (any free port) to 65535"
    return f"`{key}` is {error.instance!r}: it must be {expected}."
