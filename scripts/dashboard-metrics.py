#!/usr/bin/env python3
"""The metric names deploy/grafana/dashboards/kaizen.json queries, one a line.

    scripts/dashboard-metrics.py                 # list them (series names, as in the exposition)
    scripts/dashboard-metrics.py metrics.txt     # and fail if one is missing from a /metrics dump
                                                 # (curl -s localhost:8080/metrics > metrics.txt)

Also checks that panels do not overlap and, with promtool on PATH, that every expr parses.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "dashboards", "kaizen.json")

NOT_METRICS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "time", "vector", "or", "and", "unless", "by", "without", "on", "ignoring", "bool",
}


def exprs(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                  # string literals
    e = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", e)                     # matchers, ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    found = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?![a-zA-Z0-9_:]*\s*\()", e)
    return {n for n in found if n not in NOT_METRICS and not re.fullmatch(r"[0-9.e]+", n)}


def overlaps(panels):
    cells = {}
    for p in panels:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    yield f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                    break
                cells[(x, y)] = p["title"]
        if g["x"] + g["w"] > 24:
            yield f"{p['title']!r} is wider than the grid"


def promtool_check(all_exprs):
    if shutil.which("promtool") is None:
        return True
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr{i}",
         "expr": e.replace("$__rate_interval", "1m").replace("$instance", ".*")}
        for i, (_, e) in enumerate(all_exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(rules, f)  # JSON is YAML
    try:
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
    return r.returncode == 0


def main():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    all_exprs = list(exprs(dashboard))
    used = sorted(set().union(*(names(e) for _, e in all_exprs)))
    ok = True
    for problem in overlaps(dashboard["panels"]):
        print("layout:", problem, file=sys.stderr)
        ok = False
    if not promtool_check(all_exprs):
        ok = False
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            exposed = {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
                       for line in f if line.strip() and not line.startswith("#")}
        for name in used:
            if name not in exposed:
                print("missing from", sys.argv[1] + ":", name, file=sys.stderr)
                ok = False
    print("\n".join(used))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
