"""The cluster's status as text: nodes, resource usage and pending demand, in ``ray status``'s
layout. ``raggio status`` prints it; the dashboard's ``/api/cluster_status`` answers it.
A pure function of the control store's records. How much of each resource the nodes use
(``node_usage``, ``summed_usage``) is computed here for every view: a resource's use is its
total less what is available, the object store's the bytes the node reports in use;
placement groups' resources (``CPU_group_...``) are left out, a bundle's resources being
counted in the node's own.

Each pending demand says why it waits: no node could ever fit it (and which
resource is missing), or every node that fits is busy. Pending tasks follow,
grouped by why they wait, from the control store's task history: for their
arguments, for an actor, for a placement group, for resources. A last line
gives the dashboard's URL when the cluster runs one.
"""

from __future__ import annotations

import collections
import datetime
from typing import Iterable

from raggio.common.labels import describe
from raggio.common.placement_group_resources import is_group_resource
from raggio.common.resources import why_waiting

_BYTES_KEYS = ("memory", "object_store_memory")


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n:.2f}TiB"


def render(nodes: list[dict], placement_groups: dict | None = None,
           pending_tasks: list[dict] | None = None, now: datetime.datetime | None = None,
           dashboard_url: str | None = None, autoscaler: dict | None = None) -> str:
    """The status text; with ``autoscaler`` (``autoscaler_status.read``), its launches,
    failures, requests and reasons; with ``dashboard_url``, a last line giving it."""
    now = now or datetime.datetime.now()
    lines = [f"======== Cluster status: {now} ========", "Node status",
             "-" * 63, "Active:"]
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    dead = [n for n in nodes if n["state"] == "DEAD"]
    recovering = [n for n in nodes if n["state"] == "RECOVERING"]
    lines += [f" 1 node_{n['node_id'].hex()}" + (" (head)" if n.get("is_head") else "")
              + (f" (draining: {n['draining']})" if n.get("draining") else "")
              for n in alive] or [" (no active nodes)"]
    lines += ["Pending:"]
    lines += ([f" node_{n['node_id'].hex()} ({n['node_ip']}): reconnecting after a "
               "control-store restart" for n in recovering]
              + _launching(autoscaler)) or [" (no pending nodes)"]
    lines += ["Recent failures:"]
    lines += ([f" node_{n['node_id'].hex()} ({n['node_ip']}): lost at "
               f"{datetime.datetime.fromtimestamp(n.get('end_time', 0)):%Y-%m-%d %H:%M:%S}"
               + (f" ({n['death_reason']})" if n.get("death_reason") else "")
               for n in dead]
              + _launch_failures(autoscaler)) or [" (no failures)"]
    lines += ["", "Resources", "-" * 63, "Total Usage:"]
    lines += usage_lines(summed_usage(map(node_usage, alive))) or [" (no resources)"]
    lines += ["", "From request_resources:"]
    lines += _requests(autoscaler) or [" (none)"]
    lines += ["Pending Demands:"]
    lines += _demands(nodes, placement_groups or {})
    lines += ["Pending tasks:"]
    lines += [f" {group['count']} waiting: {group['reason']} (e.g. {group['example']})"
              for group in pending_tasks or ()] or [" (no pending tasks)"]
    if autoscaler is not None:
        lines += ["", "Autoscaler", "-" * 63] + _reasons(autoscaler["status"], now)
    if dashboard_url:
        lines += ["", f"Dashboard: {dashboard_url} (`raggio dashboard` prints a URL that logs "
                      "you in)"]
    return "\n".join(lines)


#: An autoscaler view older than this is reported as stale: the monitor is not running.
STALE_STATUS_S = 60


def _launching(autoscaler: dict | None) -> list[str]:
    if autoscaler is None:
        return []
    return [f" {node_type}, {count} launching"
            for node_type, count in sorted(autoscaler["status"].get("launching", {}).items())]


def _launch_failures(autoscaler: dict | None) -> list[str]:
    if autoscaler is None:
        return []
    return [f" {f['node_type']}: launching {f['count']} failed"
            + (f" ({f['times']} times)" if f["times"] > 1 else "")
            + f", last at {datetime.datetime.fromtimestamp(f['last']):%H:%M:%S}: {f['error']}"
            for f in autoscaler["failures"][-5:]]


def _requests(autoscaler: dict | None) -> list[str]:
    if autoscaler is None:
        return []
    counts = collections.Counter(repr(dict(sorted(b.items()))) for b in autoscaler["requests"])
    return [f" {shape}: {count} from request_resources" for shape, count in counts.items()]


def _reasons(status: dict, now: datetime.datetime) -> list[str]:
    age = now.timestamp() - status["time"]
    running = ", ".join(f"{count} {node_type}" for node_type, count
                        in sorted(status.get("running", {}).items())) or "no nodes"
    lines = [f" Cluster {status['cluster_name']!r}: {running}; last round {age:.0f} s ago."]
    if age > STALE_STATUS_S:
        lines.append(" The autoscaler has not reported for a minute: is its monitor running? "
                     "(its log: <session>/logs/monitor.log on the head; `raggio monitor`)")
    lines += [f" {reason}" for reason in status.get("reasons", [])]
    lines += [f" node_{node_id}: idle for {idle_s:.0f} s"
              for node_id, idle_s in sorted(status.get("idle", {}).items())]
    return lines


def usage_lines(usage: dict[str, list[float]]) -> list[str]:
    """``{resource: [used, total]}`` as ``ray status`` prints it, ``1.0/2.0 CPU`` a line
    (CPU and GPU first, the byte counts last; ``node:<ip>`` left out)."""
    order = sorted((k for k in usage if not k.startswith("node:")),
                   key=lambda k: (k not in ("CPU", "GPU"), k in _BYTES_KEYS, k))
    out = []
    for key in order:
        used, total = usage[key]
        out.append(f" {format_bytes(used)}/{format_bytes(total)} {key}" if key in _BYTES_KEYS
                   else f" {used:.1f}/{total:.1f} {key}")
    return out


def node_usage(node: dict) -> dict[str, list[float]]:
    """``{resource: [used, total]}`` of a live node; ``{}`` for one that is not alive."""
    if node["state"] != "ALIVE":
        return {}
    available = node.get("available") or {}
    usage = {}
    for key, total in node["resources"].items():
        if is_group_resource(key):
            continue
        used = (node.get("object_store_used", 0) if key == "object_store_memory"
                else total - available.get(key, 0.0))
        usage[key] = [float(used), float(total)]
    return usage


def summed_usage(usages: Iterable[dict[str, list[float]]]) -> dict[str, list[float]]:
    """``{resource: [used, total]}`` summed over ``node_usage`` answers."""
    summed: dict[str, list[float]] = {}
    for usage in usages:
        for key, (used, total) in usage.items():
            pair = summed.setdefault(key, [0.0, 0.0])
            pair[0] += used
            pair[1] += total
    return summed


def _demands(nodes: list[dict], placement_groups: dict) -> list[str]:
    counts: collections.Counter = collections.Counter()
    shapes: dict[str, tuple] = {}  #: key -> (resources, label constraints or None)
    for node in nodes:
        if node["state"] != "ALIVE":
            continue
        for demand in node.get("demand", []):
            key = repr(dict(sorted(demand["resources"].items())))
            labels = demand.get("labels")
            if labels:
                key += f" with labels {describe(labels['hard'])}"
            counts[key] += 1
            shapes[key] = (demand["resources"], labels)
    out = []
    for key, count in counts.most_common():
        resources, labels = shapes[key]
        out.append(f" {key}: {count}+ pending tasks/actors "
                   f"({why_waiting(resources, nodes, labels)})")
    for group in placement_groups.values():
        if group["state"] == "PENDING":
            bundles = [group["bundles"][i] for i in sorted(group["bundles"])]
            out.append(f" {bundles} ({group['strategy']}): 1+ pending placement groups "
                       f"({group['pending_reason']})")
    return out or [" (no resource demands)"]
