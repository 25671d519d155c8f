"""Cores used per lab node (and by the host's hastack processes) between two times, from a cgsample.sh log.

    python3 cgrate.py LOG [FROM_EPOCH TO_EPOCH]

A cgsample.sh line: `EPOCH node=TOTAL_CPU_S/SSH_CPU_S ... host=CPU_S` (cumulative seconds)."""

import sys


def parse(path):
    rows = []
    for line in open(path):
        parts = line.split()
        t, vals = int(parts[0]), {}
        for p in parts[1:]:
            k, v = p.split("=", 1)
            vals[k] = float(v.split("/")[0] or 0)
        rows.append((t, vals))
    return rows


def main():
    rows = parse(sys.argv[1])
    lo, hi = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (rows[0][0], rows[-1][0])
    inside = [r for r in rows if lo <= r[0] <= hi]
    (t0, a), (t1, b) = inside[0], inside[-1]
    span = t1 - t0
    # the host's drill process restarts at 0 when it ends: only nodes are summed over a window it spans
    used = {k: (b[k] - a[k]) / span for k in b if k in a and b[k] >= a[k]}
    print(f"{span} s: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(used.items())) +
          f"; sum {sum(used.values()):.2f} cores")


main()
