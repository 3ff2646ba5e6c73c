#!/usr/bin/python3
"""Where the ranks of a data-parallel step wait for each other (issue 15; bench/RESULTS.md).

Reads two ranks' traces of one process group (BYOL_ALIGN_TRACE_COLLECTIVES, native/distributed.cc:
one JSON line a collective, in the same order on every rank) and prints, for each kind of
collective, how many a step, how long each rank was blocked in them a step, and how much of that
came after both ranks had launched it (the rest is one rank waiting for the other). The timed
steps are the collectives between the dist worker's first barrier (before its timed steps) and the
next one (bench/dist_worker.ts).

Usage: trace.py RANK0.jsonl RANK1.jsonl STEPS
"""
import json
import sys
from collections import OrderedDict


def timed(path):
    with open(path, encoding="utf8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    barriers = [i for i, line in enumerate(lines) if line["op"] == "barrier"]
    if not barriers:
        raise SystemExit(f"{path}: no barrier: not a trace of bench/dist_worker.js")
    end = barriers[1] if len(barriers) > 1 else len(lines)
    return lines[barriers[0] + 1 : end]


def kind(op):
    """The operation without its tensors' shapes where several shapes share it ('SyncBatchNorm's backward ...')."""
    return op[: op.index(")") + 1] if ")" in op else op


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    first, second = timed(argv[0]), timed(argv[1])
    steps = int(argv[2])
    if [line["op"] for line in first] != [line["op"] for line in second]:
        raise SystemExit("the two traces hold different collectives: not two ranks of one run")
    rows = OrderedDict()
    for a, b in zip(first, second):
        row = rows.setdefault(kind(a["op"]), [0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += (a["endedUs"] - a["beganUs"]) / 1000
        row[2] += (b["endedUs"] - b["beganUs"]) / 1000
        # From the later launch to the earlier end: the time the collective itself took.
        row[3] += max(0, min(a["endedUs"], b["endedUs"]) - max(a["beganUs"], b["beganUs"])) / 1000
    print(f"{'collective':<62} {'a step':>6} {'rank 0 blocked':>14} {'rank 1 blocked':>14} {'both there':>10}  (ms a step)")
    totals = [0, 0.0, 0.0, 0.0]
    for name, row in rows.items():
        print(f"{name[:62]:<62} {row[0] / steps:6.1f} {row[1] / steps:14.1f} {row[2] / steps:14.1f} {row[3] / steps:10.1f}")
        totals = [t + r for t, r in zip(totals, row)]
    print(f"{'all':<62} {totals[0] / steps:6.1f} {totals[1] / steps:14.1f} {totals[2] / steps:14.1f} {totals[3] / steps:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
