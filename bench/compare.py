"""Print Ray and raggio microbenchmark results side by side.

Usage: python3 bench/compare.py RAY_JSON RAGGIO_JSON

Both files are written by the bench scripts' `--json` (or by run_vs_ray.py).  The ratio column
is raggio/Ray; the last column says whether raggio does better or worse
(within 5% counts as about the same),
given that throughput (ops/s, GB/s) is better higher and time, memory and
process counts are better lower.
"""

import json
import sys
from collections import Counter

NAME_WIDTH = 48
SAME_WITHIN = 0.05  # a ratio this close to 1 is reported as "about the same"


def cell(row):
    if row is None:
        return "-"
    if row["error"]:
        return "error"
    value = row["value"]
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def ratio_and_verdict(ray_row, raggio_row):
    if not ray_row or not raggio_row or ray_row["error"] or raggio_row["error"]:
        return "-", ""
    if not ray_row["value"]:
        return "-", ""
    ratio = raggio_row["value"] / ray_row["value"]
    if abs(ratio - 1) <= SAME_WITHIN:
        return f"{ratio:.2f}x", "about the same"
    better = ratio < 1 if ray_row["lower_is_better"] else ratio > 1
    return f"{ratio:.2f}x", "better" if better else "worse"


def print_table(ray_data, raggio_data, out=sys.stdout):
    """Print both sides' rows (JSON documents as the bench scripts write them)."""
    ray_rows = {row["name"]: row for row in ray_data["rows"]}
    raggio_rows = {row["name"]: row for row in raggio_data["rows"]}
    names = list(ray_rows) + [name for name in raggio_rows if name not in ray_rows]

    ray_title = f"Ray {ray_data['version'] or ''}".strip()
    raggio_title = f"raggio {raggio_data['version'] or ''}".strip()
    print(
        f"{'row':<{NAME_WIDTH}} {ray_title:>14} {raggio_title:>14} {'unit':<6}"
        f" {'raggio/Ray':>10}  raggio is", file=out
    )
    print("-" * (NAME_WIDTH + 64), file=out)
    errors = Counter()
    for name in names:
        ray_row, raggio_row = ray_rows.get(name), raggio_rows.get(name)
        unit = (ray_row or raggio_row)["unit"]
        ratio, verdict = ratio_and_verdict(ray_row, raggio_row)
        print(
            f"{name:<{NAME_WIDTH}} {cell(ray_row):>14} {cell(raggio_row):>14}"
            f" {unit:<6} {ratio:>10}  {verdict}", file=out
        )
        for backend, row in (("Ray", ray_row), ("raggio", raggio_row)):
            if row and row["error"]:
                errors[f"{backend}: {row['error']}"] += 1
    if ray_data.get("quick") or raggio_data.get("quick"):
        print("\n(at least one side ran with --quick: numbers are rough)", file=out)
    if errors:
        print("\nErrors:", file=out)
        for error, rows in errors.items():
            print(f"  {error}  ({rows} row{'s' if rows > 1 else ''})", file=out)


def load(path):
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print_table(load(sys.argv[1]), load(sys.argv[2]))
