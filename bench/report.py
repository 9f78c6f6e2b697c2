"""How a bench script ends: its rows printed, a line a row, and written as JSON for compare.py.

Each script under bench/ measures one backend per run (``--backend ray|raggio``) and
calls ``finish``; run_vs_ray.py runs it once per backend and compares the two JSON files.
Imports nothing of raggio or Ray: the scripts run under either's Python.
"""

import json


def finish(backend: str, version: str, rows: list[dict], json_path: str | None,
           notes: list[str] = (), **extra) -> int:
    """Print ``rows`` and ``notes``, write them (and ``extra``) to ``json_path`` when given;
    the exit status: 1 if a row failed."""
    for r in rows:
        value = "ERROR " + r["error"] if r["error"] else f"{r['value']:.3f} {r['unit']}"
        print(f"{r['name']:<48} {value}")
    for note in notes:
        print(f"{backend}: {note}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"backend": backend, "version": version, "quick": False, "rows": rows,
                       "notes": list(notes), **extra}, f, indent=1)
    return 1 if any(r["error"] for r in rows) else 0
