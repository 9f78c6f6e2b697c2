"""``raggio list``, ``raggio get`` and ``raggio summary``: the state API, printed as Ray does.

A listing is a header with the time, a stats block and a table whose columns
are the fields in upper case, one row per resource and a dict cell on several
lines (``key: value``); ``--format json|yaml`` prints the rows instead.
"""

from __future__ import annotations

import datetime
import json

import click

from raggio.util.state import api

RULE = "-" * 30


def parse_filters(texts: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``key=value`` / ``key!=value`` strings as the API's filter tuples."""
    filters = []
    for text in texts:
        op = "!=" if "!=" in text else "="
        key, sep, value = text.partition(op)
        if not sep or not key.strip():
            raise click.BadParameter(f"{text!r} is not KEY=VALUE or KEY!=VALUE",
                                     param_hint="--filter")
        filters.append((key.strip(), op, value.strip()))
    return filters


def _cell_lines(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}: {_scalar(v)}" for k, v in value.items()] or [""]
    if isinstance(value, list):
        return [json.dumps(item, default=str) for item in value] or [""]
    return [_scalar(value)]


def _scalar(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value > 2**30:
        return f"{value / 2**30:.3f} GiB"
    return str(value)


def render_table(rows: list[dict], columns: list[str]) -> str:
    """Columns padded to their widest line; a row's dict cells stack their lines."""
    cells = [[_cell_lines(row[c]) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(line) for row in cells for line in row[i]])
              for i, c in enumerate(columns)]
    index_width = len(str(max(len(rows) - 1, 0)))
    out = [" " * (index_width + 3) + "  ".join(c.upper().ljust(w)
                                               for c, w in zip(columns, widths)).rstrip()]
    for number, row in enumerate(cells):
        for line_no in range(max(len(cell) for cell in row)):
            prefix = f" {number:>{index_width}}  " if line_no == 0 else " " * (index_width + 3)
            line = "  ".join((cell[line_no] if line_no < len(cell) else "").ljust(w)
                             for cell, w in zip(row, widths))
            out.append((prefix + line).rstrip())
    return "\n".join(out)


def render(rows: list, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(rows, indent=2, default=str)
    if output_format == "yaml":
        import yaml
        return yaml.safe_dump(rows, sort_keys=False, default_flow_style=False).rstrip()
    raise click.BadParameter(f"unknown format {output_format!r}", param_hint="--format")


def list_command(resource: str, filters: tuple[str, ...], limit: int, detail: bool,
                 output_format: str, address: str | None) -> str:
    rows, totals = _call(api.list_resource_with_totals, resource, address=address,
                         filters=parse_filters(filters), limit=limit, detail=detail)
    for warning in (api.dropped_warning(totals), api.missing_warning(resource, totals)):
        if warning:
            click.echo(f"Warning: {warning}", err=True)
    if output_format != "table":
        return render(rows, output_format)
    spec = api.resource(resource)
    columns = list(spec.columns + (spec.detail_columns if detail else ()))
    stats = [f"Total: {len(rows)}"]
    if totals["total"] > len(rows) and not filters:
        stats.append(f"Shown: {len(rows)} of {totals['total']} (raise --limit to see more)")
    if "dropped" in totals:
        stats.append(f"Dropped from the history: {totals['dropped'] + totals['dropped_at_source']}")
    lines = [f"======== List: {datetime.datetime.now()} ========", "Stats:", RULE, *stats, "",
             "Table:", RULE, render_table(rows, columns)]
    return "\n".join(lines)


def get_command(resource: str, resource_id: str, address: str | None) -> str:
    row = _call(api.get_resource, resource, resource_id, address=address)
    if row is None:
        raise click.ClickException(
            f"No {resource.rstrip('s').replace('-', ' ')} with id {resource_id!r}. "
            f"`raggio list {resource}` shows the ids there are.")
    return render(row, "yaml")


def summary_actors_command(address: str | None) -> str:
    summary = _call(api.summarize_actors, address=address)["cluster"]
    rows = [{"class_name": entry["class_name"], "state_counts": entry["state_counts"]}
            for entry in summary["summary"].values()]
    rule = "-" * 36
    lines = [f"======== Actors Summary: {datetime.datetime.now()} ========", "Stats:", rule,
             f"total_actors: {summary['total_actors']}", "", "",
             "Table (group by class):", rule, render_table(rows, ["class_name", "state_counts"])]
    return "\n".join(lines)


def summary_tasks_command(address: str | None) -> str:
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = _call(api.summarize_tasks, address=address)["cluster"]
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    rows = [{"func_or_class_name": key, "state_counts": entry["state_counts"],
             "type": entry["type"]} for key, entry in summary["summary"].items()]
    rule = "-" * 36
    lines = [f"======== Tasks Summary: {datetime.datetime.now()} ========", "Stats:", rule,
             f"total_actor_scheduled: {summary['total_actor_scheduled']}",
             f"total_actor_tasks: {summary['total_actor_tasks']}",
             f"total_tasks: {summary['total_tasks']}"]
    if summary["dropped"]:
        lines.append(f"dropped_from_history: {summary['dropped']}")
    lines += ["", "", "Table (group by func_name):", rule,
              render_table(rows, ["func_or_class_name", "state_counts", "type"])]
    return "\n".join(lines)


def summary_objects_command(address: str | None) -> str:
    summary = _call(api.summarize_objects, address=address)["cluster"]
    rows = [dict(entry, call_site=site) for site, entry in summary["summary"].items()]
    rule = "-" * 36
    lines = [f"======== Object Summary: {datetime.datetime.now()} ========", "Stats:", rule,
             f"callsite_enabled: {summary['callsite_enabled']}",
             f"total_objects: {summary['total_objects']}",
             f"total_size_mb: {summary['total_size_mb']:.6f}", "", "",
             "Table (group by callsite)", rule,
             render_table(rows, ["call_site", "total_objects", "total_size_mb",
                                 "total_num_workers", "total_num_nodes", "task_state_counts",
                                 "ref_type_counts"])]
    return "\n".join(lines)


def _call(fn, *args, **kwargs):
    from raggio.exceptions import RayError
    try:
        return fn(*args, **kwargs)
    except api.RayStateApiException as exc:
        raise click.ClickException(str(exc)) from None
    except RayError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
