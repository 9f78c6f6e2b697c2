"""Node labels: their syntax, the selectors that match them, and matching.

Shared by every layer (no I/O, no raggio imports): the CLI and ``init()``
parse and check a node's labels, ``core/options.py`` checks ``label_selector``
and ``fallback_strategy``, ``core/scheduling_strategies.py`` builds
selectors from ``NodeLabelSchedulingStrategy``, and the node's scheduling
policy and the control store's actor placement match nodes against them.

A label is ``key: value`` with Kubernetes' syntax, as in Ray: a key is an
optional DNS-subdomain prefix and a slash, then a name of at most 63
characters; keys under ``ray.io/`` are Ray's own (``ray.io/node-id``).

On the wire a selector is a list of conditions ``[key, op, values]``, with
``op`` one of ``in``, ``!in``, ``exists``, ``!exists``; a node matches when
every condition holds. Ray's ``label_selector`` values read ``"v"``, ``"!v"``,
``"in(a,b)"`` and ``"!in(a,b)"``.
"""

from __future__ import annotations

import json
import re

#: Keys under this prefix are set by raggio itself (Ray's ``ray.io/``).
RESERVED_PREFIX = "ray.io/"
#: The label every node gets: its id in hex.
NODE_ID_LABEL = "ray.io/node-id"

_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_NAME_RE = re.compile(_NAME)
_PREFIX_RE = re.compile(rf"({_NAME})?(\.({_NAME})?)*")
_SELECTOR_VALUE_RE = re.compile(rf"!?(in)?\({_NAME}(, ?{_NAME})*\)|!?{_NAME}")

_SYNTAX = ("must be 63 chars or less beginning and ending with an alphanumeric character "
           "([a-z0-9A-Z]) with dashes (-), underscores (_), dots (.), and alphanumerics between.")


def key_error(key: str) -> str | None:
    """Why ``key`` is not a valid label key, or None."""
    name = key
    if "/" in key:
        prefix, name = key.rsplit("/", 1)
        if len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix):
            return (f"Invalid label key prefix `{prefix}`. Prefix must be a series of DNS "
                    "labels separated by dots (.), not longer than 253 characters in total.")
    if len(name) > 63 or not _NAME_RE.fullmatch(name):
        return f"Invalid label key name `{name}`. Name {_SYNTAX}"
    return None


def check_node_labels(labels: dict, *, reserved_ok: bool = False) -> dict[str, str]:
    """A node's user labels, checked; raise ValueError on a bad key or value, or (unless
    ``reserved_ok``, as for ``--labels key=value``) a key under ``ray.io/``."""
    if not isinstance(labels, dict):
        raise ValueError(f"Node labels must be a dict of str to str, got {labels!r}.")
    for key, value in labels.items():
        if not isinstance(key, str):
            raise ValueError("The key is not string type.")
        if not isinstance(value, str):
            raise ValueError(f'The value of "{key}" is not string type.')
        error = key_error(key)
        if error:
            raise ValueError(error)
        if value and (len(value) > 63 or not _NAME_RE.fullmatch(value)):
            raise ValueError(f"Invalid label key value `{value}`. Value {_SYNTAX}")
        if key.startswith(RESERVED_PREFIX) and not reserved_ok:
            raise ValueError(f"Custom label keys `{key}` cannot start with the prefix "
                             f"`{RESERVED_PREFIX}`. This is reserved for Ray defined labels.")
    return dict(labels)


def parse_labels_flag(text: str) -> dict[str, str]:
    """The value of ``raggio start --labels``: ``key1=value1,key2=value2`` (Ray 2.60's form,
    which may set Ray's own ``ray.io/`` keys, such as ``ray.io/accelerator-type``) or, as
    Ray still accepts it, a JSON object of strings (without ``ray.io/`` keys).

    Raises:
        ValueError: neither form, or a bad key or value.
    """
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1]
    try:
        labels = json.loads(text) if text.startswith("{") else None
        if labels is not None:
            return check_node_labels(labels)
    except ValueError:
        pass  # not JSON of strings: read as key=value pairs, which gives Ray's error
    labels = {}
    for pair in text.split(",") if text else []:
        parts = pair.split("=")
        if len(parts) != 2:
            raise ValueError("Label string is not a key-value pair.")
        labels[parts[0].strip()] = parts[1].strip()
    return check_node_labels(labels, reserved_ok=True)


def selector_error(label_selector) -> str | None:
    """Why ``label_selector`` (Ray's ``{"key": "value" | "!value" | "in(a,b)" | "!in(a,b)"}``)
    is invalid, or None."""
    if label_selector is None:
        return None
    for key, value in label_selector.items():
        error = key_error(key) if isinstance(key, str) else f"Label key {key!r} is not a str."
        if error:
            return error
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _SELECTOR_VALUE_RE.fullmatch(value):
            return (f"Invalid label selector value `{value}`. The label selector value should "
                    "contain optional operators and a label value. Supported operators are: "
                    f"! and {{'in'}}. Value {_SYNTAX}")
    return None


def fallback_strategy_error(fallback_strategy) -> str | None:
    """Why ``fallback_strategy`` (a list of ``{"label_selector": {...}}``) is invalid, or None."""
    for option in fallback_strategy or []:
        if not isinstance(option, dict):
            return "Each element in fallback_strategy must be a dictionary."
        if not option:
            return "Empty dictionary found in `fallback_strategy`."
        for name in option:
            if name != "label_selector":
                return (f"Unsupported option found: '{name}'. Only ['label_selector'] is "
                        "currently supported.")
        selector = option.get("label_selector")
        if selector:
            if not isinstance(selector, dict):
                return 'The value of "label_selector" must be a dictionary.'
            error = selector_error(selector)
            if error:
                return error
    return None


def selector_conditions(label_selector: dict) -> list[list]:
    """Ray's ``label_selector`` dict as wire conditions (see the module docstring)."""
    conditions = []
    for key, value in label_selector.items():
        value = value or ""
        negated = value.startswith("!")
        if negated:
            value = value[1:]
        if value.startswith("in(") and value.endswith(")"):
            values = [v.strip() for v in value[3:-1].split(",")]
        elif value.startswith("(") and value.endswith(")"):
            values = [v.strip() for v in value[1:-1].split(",")]
        else:
            values = [value]
        conditions.append([key, "!in" if negated else "in", values])
    return conditions


def matches(labels: dict[str, str], conditions: list) -> bool:
    """Does a node with ``labels`` meet every condition?"""
    for key, op, values in conditions:
        value = labels.get(key)
        if op == "in":
            ok = value is not None and value in values
        elif op == "!in":
            ok = value is None or value not in values
        elif op == "exists":
            ok = value is not None
        else:  # "!exists"
            ok = value is None
        if not ok:
            return False
    return True


def allowed_nodes(constraints: dict, labels_of: dict, feasible: set, fit_now: set) -> set:
    """The nodes label ``constraints`` (``{"hard", "soft", "fallback"}``) allow.

    Of the ``feasible`` nodes (those that could ever fit the request): the ones meeting the
    hard conditions, else the ones meeting the first fallback selector any of them meets;
    of those, the ones that also meet the soft conditions and are in ``fit_now``, if any.
    ``labels_of`` maps each node to its labels. Empty when no node qualifies.
    """
    for conditions in [constraints["hard"], *constraints.get("fallback", [])]:
        chosen = {node for node in feasible if matches(labels_of[node], conditions)}
        if chosen:
            break
    else:
        return set()
    preferred = {node for node in chosen & fit_now if matches(labels_of[node], constraints["soft"])}
    return preferred or chosen


def describe(conditions: list) -> str:
    """Conditions as a user reads them: ``region in (us), gpu exists``."""
    parts = []
    for key, op, values in conditions:
        if op in ("exists", "!exists"):
            parts.append(f"{key} {'exists' if op == 'exists' else 'does not exist'}")
        else:
            parts.append(f"{key} {'in' if op == 'in' else 'not in'} ({', '.join(values)})")
    return ", ".join(parts)


def unmatched_reason(constraints: dict) -> str:
    """Why a request with label ``constraints`` (``{"hard", "soft", "fallback"}``) fits no
    node, in a sentence for ``raggio status`` and the task history."""
    wanted = [describe(constraints["hard"]) or "(any labels)"]
    wanted += [describe(conditions) for conditions in constraints.get("fallback", [])]
    return ("infeasible: no node that could fit it has labels matching "
            + " or ".join(wanted) + ". Add a node with those labels.")
