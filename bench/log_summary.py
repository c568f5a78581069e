#!/usr/bin/python3
"""Summarise virtnetd's debug log (VIRTNET_LOG=debug) per benchmark phase.

virtnetd logs how long each step of a network start or stop took
(`network 'NAME': STEP took N ms`). This groups those lines by the phase of
bench/compare_libvirt.py they fall in (from the phase times in its JSON)
and prints, per phase and step, the count, total, median and maximum. For
the restart phase it also prints the daemon's own timeline from its first
log line to `serving`.
"""

import argparse
import collections
import datetime
import json
import re
import statistics
import sys

LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) (\w+)\s+(\S+): (.*)$")
STEP = re.compile(r"^network '([^']+)': (.+) took ([\d.]+) ms$")


def day_seconds(epoch):
    d = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return d.hour * 3600 + d.minute * 60 + d.second + d.microsecond / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True, help="LATEST.json of the run")
    ap.add_argument("log")
    args = ap.parse_args()
    with open(args.results) as f:
        res = json.load(f).get("virtnet", {})
    windows = {k: (day_seconds(a), day_seconds(b))
               for k, (a, b) in (res.get("phase_epochs") or {}).items()}
    restart = res.get("restart_100_active") or {}
    steps = collections.defaultdict(lambda: collections.defaultdict(list))
    restart_lines = []
    with open(args.log, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            h, mi, s, ms = (int(x) for x in m.group(1, 2, 3, 4))
            t = h * 3600 + mi * 60 + s + ms / 1000
            # Log times are to the millisecond: allow that much slack, but
            # prefer the phase the time falls in exactly.
            phase = next((k for k, (a, b) in windows.items() if a <= t <= b), None) or next(
                (k for k, (a, b) in windows.items() if a - 0.001 <= t <= b + 0.001), None)
            if phase is None:
                continue
            msg = m.group(7)
            sm = STEP.match(msg)
            if sm:
                steps[phase][sm.group(2)].append(float(sm.group(3)))
            if phase == "restart" and "exec_epoch" in restart:
                if day_seconds(restart["exec_epoch"]) <= t <= day_seconds(restart["ready_epoch"]) + 0.002:
                    restart_lines.append((t, m.group(5), m.group(6), msg))
    for phase in windows:
        if phase not in steps:
            continue
        a, b = windows[phase]
        print(f"=== {phase} ({b - a:.2f} s)")
        print(f"    {'step':36s} {'count':>6s} {'total ms':>10s} {'median':>8s} {'max':>8s}")
        for step, v in sorted(steps[phase].items(), key=lambda kv: -sum(kv[1])):
            print(f"    {step:36.36s} {len(v):6d} {sum(v):10.1f} {statistics.median(v):8.2f} "
                  f"{max(v):8.2f}")
        print()
    if restart_lines:
        t0 = day_seconds(restart["exec_epoch"])
        print(f"=== restart timeline (ms after exec; answered at "
              f"{restart['ready_s'] * 1000:.1f} ms)")
        shown = 0
        last = None
        for t, lvl, target, msg in restart_lines:
            if "re-adopted" in msg and last is not None and "re-adopted" in last:
                last = msg
                continue
            print(f"    {(t - t0) * 1000:8.1f}  {lvl:5s} {target}: {msg[:150]}")
            last = msg
            shown += 1
        n = sum(1 for x in restart_lines if "re-adopted" in x[3])
        print(f"    ({n} networks re-adopted)")


if __name__ == "__main__":
    sys.exit(main())
