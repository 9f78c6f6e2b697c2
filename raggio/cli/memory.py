"""``raggio memory``: every object reference in the cluster and the stores' usage, as
``ray memory`` prints them.

The references come from the state API (``list_objects``: each driver's and
worker's refs); the store figures from each node manager (``get_node_stats``).
Groups are by node address (or by call site, which reads "disabled" unless
``RAY_record_ref_creation_sites=1`` had them recorded), sorted by size, pid
or reference type. Actor handles show as ACTOR_HANDLE references.
"""

from __future__ import annotations

import datetime

from raggio.cli.gcs_client import query, resolve
from raggio.cli.state import _call
from raggio.util.state import api

REF_TYPES = (("Local References", "LOCAL_REFERENCE"), ("Pinned", "PINNED_IN_MEMORY"),
             ("Used by task", "USED_BY_PENDING_TASK"), ("Captured in Objects", "CAPTURED_IN_OBJECT"),
             ("Actor Handles", "ACTOR_HANDLE"))
SORT_KEYS = {"OBJECT_SIZE": lambda r: -r["object_size"], "PID": lambda r: r["pid"],
             "REFERENCE_TYPE": lambda r: r["reference_type"]}
COLUMNS = ("IP Address", "PID", "Type", "Call Site", "Status", "Size", "Reference Type",
           "Object Ref")


def memory(group_by: str, sort_by: str, stats_only: bool, address: str | None) -> str:
    rows = _call(api.list_resource, "objects", address=address, limit=None, detail=True)
    out = [f"======== Object references status: {datetime.datetime.now()} ========"]
    if not stats_only:
        out.append(f"Grouping by {group_by.lower().replace('_', ' ')}...        "
                   f"Sorting by {sort_by.lower().replace('_', ' ')}...        "
                   "Display all entries per group...\n\n")
        key = "ip" if group_by == "NODE_ADDRESS" else "call_site"
        for group in sorted({row[key] for row in rows}):
            members = sorted((r for r in rows if r[key] == group), key=SORT_KEYS[sort_by])
            out += _group(group_by, group, members)
        if all(row["call_site"] == "disabled" for row in rows):
            out.append("To record callsite information for each ObjectRef created, set env "
                       "variable RAY_record_ref_creation_sites=1\n")
    out += ["--- Aggregate object store stats across all nodes ---", _store_stats(address)]
    return "\n".join(out)


def _group(group_by: str, name: str, rows: list[dict]) -> list[str]:
    title = "node address" if group_by == "NODE_ADDRESS" else "call site"
    counts = []
    for _label, ref_type in REF_TYPES:
        typed = [r for r in rows if r["reference_type"] == ref_type]
        counts.append(f"{len(typed)}, ({float(sum(r['object_size'] for r in typed))} B)")
    used = float(sum(r["object_size"] for r in rows))
    header = ["Mem Used by Objects"] + [label for label, _ in REF_TYPES]
    values = [f"{used} B"] + counts
    widths = [max(len(h), len(v)) + 2 for h, v in zip(header, values)]
    lines = [f"--- Summary for {title}: {name} ---",
             "".join(h.ljust(w) for h, w in zip(header, widths)),
             "".join(v.ljust(w) for v, w in zip(values, widths)), "",
             f"--- Object references for {title}: {name} ---",
             " | ".join(c.ljust(8) for c in COLUMNS), ""]
    for row in rows:
        cells = (row["ip"], str(row["pid"]), row["type"].capitalize(), row["call_site"],
                 row["task_status"], "?" if row["reference_type"] == "ACTOR_HANDLE" else
                 f"{float(row['object_size'])} B", row["reference_type"],
                 row["object_id"])
        lines += [" | ".join(c.ljust(8) for c in cells), ""]
    return lines


def _store_stats(address: str | None) -> str:
    cluster = resolve(address)
    (nodes,) = query(cluster, ("get_nodes", None))
    used = capacity = count = spilled = 0
    for node in nodes:
        if node["state"] != "ALIVE":
            continue
        (stats,) = query(dict(cluster, gcs_address=node["address"]), ("get_node_stats", None))
        store = stats["object_store"]
        used += store["used_bytes"]
        capacity += store["capacity_bytes"]
        count += store["num_objects"]
        spilled += store["spilled_bytes"]
    line = (f"Plasma memory usage {used // 2**20} MiB, {count} objects, "
            f"{100 * used / capacity if capacity else 0:.2f}% full")
    if spilled:
        line += f"\nSpilled {spilled // 2**20} MiB to disk"
    return line + "\n"
