#!/usr/bin/python3
"""Summarise `strace -f -ttt -T -yy` traces of virtnetd (bench/profile-virtnetd).

For each trace (one per measured phase): the programs the daemon ran (count,
time from the fork to the exit of the process that was exec'd), and the
system calls of the daemon's own threads grouped by call and by what they
act on (netlink, a client socket, a file under a directory, a pipe), with the
calls that only wait for the next client request kept apart. The restart
trace is cut to the window from the daemon's exec to its first answer.
"""

import argparse
import collections
import json
import os
import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
CALL = re.compile(r"^([a-z0-9_]+)\((.*)$")
RESUMED = re.compile(r"^<\.\.\. ([a-z0-9_]+) resumed>(.*)$")
DUR = re.compile(r"<(\d+\.\d+)>\s*$")
RET = re.compile(r"\)\s+=\s+(-?\d+|\?|0x[0-9a-f]+)")
FD = re.compile(r"^(\d+)<([^>]*(?:>[^>]*)?)>")

# Calls that only wait: a connection thread reading the next request, the
# accept loop, the dnsmasq-death watcher.
IDLE = {"accept", "accept4", "epoll_wait", "epoll_pwait", "poll", "ppoll",
        "futex", "restart_syscall", "clock_nanosleep", "nanosleep", "pause",
        "waitid"}


def fd_kind(args):
    """What the first fd argument is, from strace -yy's annotation."""
    m = FD.match(args)
    if not m:
        return ""
    t = m.group(2)
    if t.startswith("NETLINK:[ROUTE"):
        return "netlink route"
    if t.startswith("NETLINK:[GENERIC") or t.startswith("NETLINK:[NETFILTER"):
        return "netlink " + t.split("[")[1].split(":")[0].lower()
    if t.startswith("NETLINK"):
        return "netlink"
    if t.startswith("UNIX"):
        return "unix socket"
    if t.startswith("pipe:"):
        return "pipe"
    if t.startswith("anon_inode:[pidfd"):
        return "pidfd"
    if t.startswith("anon_inode"):
        return t.split(":", 1)[1].strip("[]")
    if t.startswith("/proc/sys/"):
        return "/proc/sys"
    if t.startswith("/proc/"):
        return "/proc"
    if t.startswith("/sys/"):
        return "/sys"
    if t.startswith("/"):
        return os.path.dirname(t) + "/"
    return t.split(":")[0]


def path_kind(args):
    m = re.match(r'^(?:AT_FDCWD|\d+<[^>]*>),\s*"([^"]*)"', args) or re.match(r'^"([^"]*)"', args)
    if not m:
        return ""
    p = m.group(1)
    if p.startswith("/proc/sys/"):
        return "/proc/sys"
    if p.startswith("/proc/"):
        return "/proc"
    if p.startswith("/sys/"):
        return "/sys"
    return os.path.dirname(p) + "/"


def records(path, window):
    """(pid, t, call, args+result) of each completed call, in order; exits as
    call '+++'."""
    pending = {}
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if window and not (window[0] <= t <= window[1]):
                continue
            if rest.startswith("+++"):
                yield pid, t, "+++", rest
                continue
            if rest.startswith("---"):
                continue
            r = RESUMED.match(rest)
            if r:
                name = r.group(1)
                start, args = pending.pop(pid, (t, ""))
                yield pid, start, name, args + r.group(2)
                continue
            c = CALL.match(rest)
            if not c:
                continue
            name, full = c.group(1), c.group(2)
            if full.endswith("<unfinished ...>"):
                pending[pid] = (t, full[: -len("<unfinished ...>")])
                continue
            yield pid, t, name, full


def parse(path, window=None):
    """Returns (daemon threads, programs, calls, span)."""
    # Pass 1: who made whom, who exec'd what, who exited when.
    children = {}  # child -> (parent, is_thread, t)
    execs = {}
    died = {}
    seen = []
    seen_set = set()
    span = [None, None]
    for pid, t, name, full in records(path, window):
        if span[0] is None:
            span[0] = t
        span[1] = t
        if pid not in seen_set:
            seen_set.add(pid)
            seen.append(pid)
        if name == "+++":
            died[pid] = t
        elif name in ("clone", "clone3", "fork", "vfork"):
            ret = RET.search(full)
            if ret and ret.group(1).isdigit():
                children[int(ret.group(1))] = (pid, "CLONE_THREAD" in full, t)
        elif name == "execve":
            ret = RET.search(full)
            if ret and ret.group(1) == "0" and pid not in execs:
                pm = re.match(r'^"([^"]*)"', full)
                execs[pid] = os.path.basename(pm.group(1)) if pm else "?"

    def owner(pid, depth=0):
        """'daemon' or the program a pid runs."""
        prog = execs.get(pid)
        if pid not in children or depth > 50:
            return prog if prog and prog != "virtnetd" else "daemon"
        par, thread, _ = children[pid]
        up = owner(par, depth + 1)
        if prog and prog != "virtnetd":
            return prog if up == "daemon" else f"{up.replace(' (forked)', '')} → {prog}"
        if up == "daemon":
            return "daemon" if thread else "fork of the daemon (no exec)"
        return up if thread else up + " (forked)"

    who = {pid: owner(pid) for pid in seen}
    daemon = {p for p, w in who.items() if w == "daemon"}
    progs = collections.defaultdict(list)
    for pid, w in who.items():
        if w == "daemon" or pid not in children:
            continue
        if children[pid][1]:
            continue  # a thread of a program
        if pid in died:
            progs[w].append(died[pid] - children[pid][2])
        else:
            progs[w + " (still running)"].append(0.0)
    # Pass 2: the daemon's own system calls.
    calls = collections.defaultdict(lambda: [0, 0.0])
    for pid, t, name, full in records(path, window):
        if pid not in daemon or name == "+++":
            continue
        d = DUR.search(full)
        dur = float(d.group(1)) if d else 0.0
        kind = fd_kind(full) or path_kind(full)
        calls[(name, kind)][0] += 1
        calls[(name, kind)][1] += dur
    return daemon, progs, calls, (span[0] or 0, span[1] or 0)


def summarise(path, window=None, out=sys.stdout):
    daemon, progs, calls, span = parse(path, window)
    name = os.path.basename(path).rsplit(".", 1)[0]
    out.write(f"=== {name}: {span[1] - span[0]:.3f} s traced, "
              f"{len(daemon)} daemon threads\n")
    if progs:
        out.write("  programs run by the daemon (fork → exit of the exec'd process):\n")
        for prog, ts in sorted(progs.items(), key=lambda kv: -sum(kv[1])):
            out.write(f"    {prog:28s} {len(ts):5d} runs  {sum(ts) * 1000:9.1f} ms total"
                      f"  {sum(ts) / len(ts) * 1000:7.2f} ms each\n")
    busy = [(k, v) for k, v in calls.items() if k[0] not in IDLE
            and not (k[1] == "unix socket" and k[0] in ("read", "recvfrom", "recvmsg"))]
    idle = sum(v[1] for k, v in calls.items() if (k, v) not in busy)
    total = sum(v[1] for _, v in busy)
    out.write(f"  daemon threads, time inside system calls: {total * 1000:.1f} ms "
              f"(+ {idle * 1000:.1f} ms waiting for clients/events/locks)\n")
    for (call, kind), (n, t) in sorted(busy, key=lambda kv: -kv[1][1])[:18]:
        out.write(f"    {call:18s} {kind:34.34s} {n:7d} calls {t * 1000:9.1f} ms\n")
    futex = sum(v[1] for k, v in calls.items() if k[0] == "futex")
    out.write(f"    (futex, i.e. lock and condition waits: {futex * 1000:.1f} ms)\n\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", help="LATEST.json of the profiled run")
    ap.add_argument("traces", nargs="+")
    args = ap.parse_args()
    restart = None
    if args.results and os.path.exists(args.results):
        with open(args.results) as f:
            r = json.load(f).get("virtnet", {}).get("restart_100_active") or {}
        if "exec_epoch" in r:
            restart = (r["exec_epoch"] - 0.01, r["ready_epoch"] + 0.01)
    for p in args.traces:
        window = restart if os.path.basename(p).startswith("restart") else None
        if os.path.basename(p).startswith("restart") and window is None:
            sys.stdout.write(f"=== {p}: no restart window in the results; whole trace\n")
        summarise(p, window)


if __name__ == "__main__":
    main()
