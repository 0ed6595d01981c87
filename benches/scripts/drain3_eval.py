#!/usr/bin/env python3
"""Grouping (GA) and parsing (PA) accuracy and speed of Python drain3 on a Loghub-2k folder.

The baseline for `eval-templates`: same input, same metrics, same JSON lines.

    python3 benches/scripts/drain3_eval.py <dir>

<dir> holds <System>/<System>_2k.log_structured.csv (subdirectories are discovered and
sorted). drain3 runs with its default TemplateMinerConfig (no masking instructions, depth 4,
sim_th 0.4, max_children 100) and no persistence. Metrics, as in eval-templates:

* ga: a line is correct when the set of lines in its predicted group (the cluster it was put
  in; drain3 never merges clusters) equals the set of lines sharing its EventId;
* pa: a line is correct when its cluster's final template equals its EventTemplate after
  normalise() on both sides;
* lines_per_sec: add_log_message alone, a fresh miner per repetition, repeated until at least
  0.2 s have been timed.
"""

import csv
import json
import os
import sys
import time

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

MIN_TIME = 0.2


def normalise(template):
    """Same as eval-templates: collapse whitespace, trim, and merge <*> that are adjacent or
    separated by one of . : , _ - /"""
    s = " ".join(template.split())
    while True:
        n = s.replace("<*><*>", "<*>")
        for sep in ".:,_-/":
            n = n.replace("<*>" + sep + "<*>", "<*>")
        if n == s:
            return s
        s = n


def new_miner():
    # The default configuration, without reading a drain3.ini from the working directory.
    return TemplateMiner(config=TemplateMinerConfig())


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [(r["Content"], r["EventId"], r["EventTemplate"]) for r in rows]


def accuracy(lines):
    miner = new_miner()
    ids = [miner.add_log_message(content)["cluster_id"] for content, _, _ in lines]
    clusters = {c.cluster_id: c for c in miner.drain.clusters}
    truth_size = {}
    for _, event_id, _ in lines:
        truth_size[event_id] = truth_size.get(event_id, 0) + 1
    groups = {}
    for i, cid in enumerate(ids):
        groups.setdefault(cid, []).append(i)
    correct = 0
    for members in groups.values():
        first = lines[members[0]][1]
        if all(lines[i][1] == first for i in members) and truth_size[first] == len(members):
            correct += len(members)
    parsed = sum(
        1
        for (_, _, truth), cid in zip(lines, ids)
        if normalise(clusters[cid].get_template()) == normalise(truth)
    )
    n = max(len(lines), 1)
    return correct / n, parsed / n


def throughput(lines):
    observed, elapsed = 0, 0.0
    while elapsed < MIN_TIME or observed == 0:
        miner = new_miner()
        start = time.perf_counter()
        for content, _, _ in lines:
            miner.add_log_message(content)
        elapsed += time.perf_counter() - start
        observed += len(lines)
    return observed / elapsed


def record(system, lines, ga, pa, speed):
    return (
        '{"system":%s,"lines":%d,"ga":%.3f,"pa":%.3f,"lines_per_sec":%.0f}'
        % (json.dumps(system), lines, ga, pa, speed)
    )


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: drain3_eval.py <dir>")
    root = sys.argv[1]
    systems = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, name + "_2k.log_structured.csv")
        if os.path.isdir(os.path.join(root, name)) and os.path.isfile(path):
            systems.append((name, path))
    if not systems:
        sys.exit("no <System>/<System>_2k.log_structured.csv under " + root)
    total, sums = 0, [0.0, 0.0, 0.0]
    for name, path in systems:
        lines = load(path)
        ga, pa = accuracy(lines)
        speed = throughput(lines)
        print(record(name, len(lines), ga, pa, speed), flush=True)
        total += len(lines)
        for i, v in enumerate((ga, pa, speed)):
            sums[i] += v
    k = len(systems)
    print(record("average", total, sums[0] / k, sums[1] / k, sums[2] / k))


if __name__ == "__main__":
    main()
