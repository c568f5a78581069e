#!/usr/bin/python3
"""Side-by-side benchmark of virtnetd against libvirt's network driver.

Run through bench/compare-libvirt, which installs what is missing, builds
virtnet in release mode and calls this script with Debian's /usr/bin/python3
(libvirt-python comes from python3-libvirt).

Two modes:

* outer (default): runs the workload once against each daemon, each in its
  own sandbox (bench/libvirt-sandbox, bench/virtnet-sandbox: private network,
  mount and pid namespaces, private directories), then prints the comparison
  table and writes bench/results/LATEST.md and bench/results/LATEST.json.
* inner (--inner SIDE): the client. It runs inside a sandbox, drives the
  daemon there through libvirt-python, and writes its raw numbers as JSON.
  The client code is the same for both daemons; only how the daemon is
  stopped and started again (for the restart measurement) differs.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid as uuidlib

HERE = os.path.dirname(os.path.abspath(__file__))

# Workload sizes.
START_STOP_CYCLES = 15  # net-start/net-destroy pairs through libvirt-python
CLI_CYCLES = 10  # net-start/net-destroy pairs through virsh / virtnet
MANY = 100  # networks defined+started, then destroyed+undefined
LISTED = 500  # inactive networks listed like `virsh net-list --all`
LIST_REPEATS = 5
CLI_LIST_REPEATS = 5
PORTS = 200  # ports created, then deleted
UPDATES = 100  # live net-update calls under ping
PING_INTERVAL = "0.01"  # 100 Hz
WAN_IP = "198.51.100.2"
HOST_WAN_IP = "198.51.100.1"


class PhaseTimeout(Exception):
    pass


def _alarm(_sig, _frm):
    raise PhaseTimeout("phase took too long")


def now():
    return time.perf_counter()


def sh(cmd, timeout=30, check=True, env=None):
    """Runs a command (list) with a bound on its time; returns stdout."""
    p = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[:500]}"
        )
    return p.stdout


def median(xs):
    return statistics.median(xs) if xs else None


def net_xml(name, bridge, prefix):
    """A NAT network with DHCP, as `virsh net-define` would be given."""
    return (
        "<network>\n"
        f"  <name>{name}</name>\n"
        "  <forward mode='nat'/>\n"
        f"  <bridge name='{bridge}' stp='on' delay='0'/>\n"
        f"  <ip address='{prefix}.1' netmask='255.255.255.0'>\n"
        "    <dhcp>\n"
        f"      <range start='{prefix}.100' end='{prefix}.200'/>\n"
        "    </dhcp>\n"
        "  </ip>\n"
        "</network>\n"
    )


def port_xml(i):
    return (
        "<networkport>\n"
        f"  <uuid>{uuidlib.uuid4()}</uuid>\n"
        f"  <owner><name>guest{i}</name><uuid>{uuidlib.uuid4()}</uuid></owner>\n"
        f"  <mac address='52:54:00:7e:{i // 256:02x}:{i % 256:02x}'/>\n"
        "</networkport>\n"
    )


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split()[1:]
    except OSError:
        return None
    return None


def rss_kib(pid):
    v = proc_status(pid, "VmRSS")
    return int(v[0]) if v else None


def cpu_seconds(pid):
    """(own, reaped children) CPU seconds of pid, all its threads."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # utime stime cutime cstime are fields 14-17 of the whole line.
    u, s, cu, cs = (int(x) for x in fields[11:15])
    return ((u + s) / tick, (cu + cs) / tick)


def alive(pid):
    """Whether any thread of pid still runs. A killed process's leader can
    show as a zombie while its other threads are still exiting, holding the
    process's files (its listening socket among them)."""
    st = proc_status(pid, "State")
    if not st:
        return False
    if st[0] not in ("Z", "X"):
        return True
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def pids_named(comm):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().strip() == comm:
                    out.append(int(d))
        except OSError:
            pass
    return out


# --------------------------------------------------------------------------
# The daemon under test: how to find it, stop it and start it again.


class Daemon:
    def __init__(self, side):
        self.side = side
        if side == "libvirt":
            self.uri = "network:///system"
            self.pidfile = "/run/libvirtd.pid"
            env = dict(os.environ, LIBVIRT_DRIVER_DIR="/run/libvirt-drivers")
            self.start_cmd = (["libvirtd", "-d"], env)
        else:
            self.uri = os.environ["VIRTNET_BENCH_URI"]
            self.pidfile = os.environ["VIRTNET_BENCH_PIDFILE"]
            self.start_cmd = (["sh", "-c", os.environ["VIRTNET_BENCH_START"]], None)
        self.cli_uri = self.uri
        # virtnet's CLI reaches either daemon: it speaks libvirt's protocol.
        if side == "libvirt":
            self.virtnet_cli_uri = "network:///system?socket=/run/libvirt/libvirt-sock"
        else:
            self.virtnet_cli_uri = self.uri

    def pid(self):
        with open(self.pidfile) as f:
            return int(f.read().strip())

    def stop(self, timeout=60):
        pid = self.pid()
        os.kill(pid, signal.SIGTERM)
        deadline = now() + timeout
        while alive(pid) and now() < deadline:
            time.sleep(0.002)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            raise RuntimeError(f"daemon {pid} ignored SIGTERM for {timeout}s")

    def start(self):
        cmd, env = self.start_cmd
        wrap = os.environ.get("BENCH_RESTART_WRAP")
        if wrap and self.side == "virtnet":
            env = dict(os.environ, VIRTNETD_WRAP=wrap)
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        return p


# --------------------------------------------------------------------------
# Guest traffic: a "wan" namespace behind the host, a guest namespace on a
# network's bridge, and ping between them through the network's NAT.


class Traffic:
    def __init__(self):
        self.ready = False

    def setup_wan(self):
        sh(["ip", "netns", "add", "wan"])
        sh(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0",
            "netns", "wan"])
        sh(["ip", "addr", "add", f"{HOST_WAN_IP}/24", "dev", "up0"])
        sh(["ip", "link", "set", "up0", "up"])
        sh(["ip", "-n", "wan", "link", "set", "lo", "up"])
        sh(["ip", "-n", "wan", "addr", "add", f"{WAN_IP}/24", "dev", "eth0"])
        sh(["ip", "-n", "wan", "link", "set", "eth0", "up"])

    def attach_guest(self, bridge, prefix):
        sh(["ip", "netns", "add", "guest"])
        sh(["ip", "link", "add", "g0", "type", "veth", "peer", "name", "eth0",
            "netns", "guest"])
        sh(["ip", "link", "set", "g0", "master", bridge])
        sh(["ip", "link", "set", "g0", "up"])
        sh(["ip", "-n", "guest", "link", "set", "lo", "up"])
        sh(["ip", "-n", "guest", "addr", "add", f"{prefix}.50/24", "dev", "eth0"])
        sh(["ip", "-n", "guest", "link", "set", "eth0", "up"])
        sh(["ip", "-n", "guest", "route", "add", "default", "via", f"{prefix}.1"])
        # Bounded wait for the first answer through NAT.
        deadline = now() + 15
        while now() < deadline:
            p = subprocess.run(
                ["ip", "netns", "exec", "guest", "ping", "-n", "-c", "1", "-W", "1",
                 WAN_IP],
                capture_output=True, timeout=5)
            if p.returncode == 0:
                self.ready = True
                return
            time.sleep(0.1)
        raise RuntimeError("guest cannot reach the wan namespace through NAT")

    def ping_start(self):
        self._t0 = now()
        self._out = tempfile.TemporaryFile(mode="w+")
        self._ping = subprocess.Popen(
            ["ip", "netns", "exec", "guest", "ping", "-n", "-i", PING_INTERVAL,
             "-W", "1", WAN_IP],
            stdout=self._out, stderr=subprocess.STDOUT)
        # Let it settle so the first replies are in before the operation.
        time.sleep(0.3)

    def ping_stop(self):
        """Stops ping; returns (sent, lost) not counting the last probe,
        which may still be in flight."""
        seconds = now() - self._t0
        self._ping.send_signal(signal.SIGINT)
        try:
            self._ping.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._ping.kill()
            self._ping.wait(timeout=5)
        self._out.seek(0)
        text = self._out.read()
        self._out.close()
        got = set()
        sent = 0
        for line in text.splitlines():
            if "icmp_seq=" in line and "bytes from" in line:
                seq = line.split("icmp_seq=")[1].split()[0]
                got.add(int(seq))
            if "packets transmitted" in line:
                sent = int(line.split()[0])
        if sent < 2:
            raise RuntimeError(f"ping sent nothing: {text[-300:]}")
        counted = range(1, sent)
        lost = sum(1 for s in counted if s not in got)
        return {"sent": len(counted), "lost": lost, "seconds": round(seconds, 3),
                "rate_hz": round(sent / seconds, 1) if seconds else None}


# --------------------------------------------------------------------------
# The workload.


class Bench:
    def __init__(self, side, virtnet_cli, results):
        import libvirt  # Debian's python3-libvirt

        self.libvirt = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        self.side = side
        self.d = Daemon(side)
        self.virtnet_cli = virtnet_cli
        self.r = results
        self.conn = libvirt.open(self.d.uri)
        self.traffic = Traffic()

    # --- helpers -----------------------------------------------------------

    def phase(self, name, fn, limit):
        """Runs one phase with a time limit, recording failures."""
        sys.stderr.write(f"[{self.side}] {name} ...\n")
        sys.stderr.flush()
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(limit)
        t = now()
        epoch = time.time()
        try:
            pid = self.d.pid()
            cpu0 = cpu_seconds(pid)
        except (OSError, ValueError):
            pid, cpu0 = None, None
        try:
            fn()
        except Exception as e:  # keep going: later phases may still work
            self.r.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
            sys.stderr.write(traceback.format_exc())
        finally:
            signal.alarm(0)
        if self.conn is None:
            try:
                self.conn = self.wait_ready(60)
            except Exception as e:
                self.r.setdefault("errors", {})[name + " (reconnect)"] = str(e)
        self.r.setdefault("phase_seconds", {})[name] = round(now() - t, 3)
        self.r.setdefault("phase_epochs", {})[name] = [epoch, time.time()]
        cpu1 = cpu_seconds(pid) if pid else None
        if cpu0 and cpu1:
            self.r.setdefault("daemon_cpu_s", {})[name] = [
                round(cpu1[0] - cpu0[0], 2), round(cpu1[1] - cpu0[1], 2)]
        sys.stderr.write(f"[{self.side}] {name} done in {now() - t:.1f}s\n")

    def hook(self, event, name):
        """Lets a profiler follow the daemon through one phase."""
        cmd = os.environ.get("BENCH_PHASE_HOOK")
        if cmd:
            pid = str(self.d.pid())
            subprocess.run(["sh", "-c", cmd, "hook", event, name, pid],
                           timeout=60)

    def timed_cli(self, argv):
        t = now()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        dt = now() - t
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()[:300]}")
        return dt, p.stdout

    def virsh(self, *args):
        return ["virsh", "-q", "-c", self.d.cli_uri, *args]

    def vcli(self, *args):
        return [self.virtnet_cli, "-q", "-c", self.d.virtnet_cli_uri, *args]

    # --- phases ------------------------------------------------------------

    def versions(self):
        v = {}
        ver = self.conn.getLibVersion()
        v["daemon_lib_version"] = f"{ver // 1000000}.{ver // 1000 % 1000}.{ver % 1000}"
        v["daemon_pid_rss_idle_kib"] = rss_kib(self.d.pid())
        self.r["daemon"] = v

    def start_destroy(self):
        conn = self.conn
        net = conn.networkDefineXML(net_xml("single", "vbs0", "10.100.0"))
        # One warm-up cycle, not counted.
        net.create()
        net.destroy()
        starts, destroys = [], []
        self.hook("start", "start_destroy")
        for _ in range(START_STOP_CYCLES):
            t = now()
            net.create()
            starts.append(now() - t)
            t = now()
            net.destroy()
            destroys.append(now() - t)
        self.hook("stop", "start_destroy")
        self.r["net_start_s"] = starts
        self.r["net_destroy_s"] = destroys

    def start_destroy_cli(self):
        out = {}
        tools = [("virsh", self.virsh)]
        if self.virtnet_cli:
            tools.append(("virtnet", self.vcli))
        for tool, mk in tools:
            try:
                s, d = [], []
                for _ in range(CLI_CYCLES):
                    s.append(self.timed_cli(mk("net-start", "single"))[0])
                    d.append(self.timed_cli(mk("net-destroy", "single"))[0])
                out[tool] = {"net_start_s": s, "net_destroy_s": d}
            except Exception as e:
                out[tool] = {"error": str(e)}
                # Leave the network inactive for the next phase.
                try:
                    n = self.conn.networkLookupByName("single")
                    if n.isActive():
                        n.destroy()
                except Exception:
                    pass
        self.r["cli_start_destroy"] = out

    def ports(self):
        net = self.conn.networkLookupByName("single")
        net.create()
        bridge = net.bridgeName()
        xmls = [port_xml(i) for i in range(PORTS)]
        ports = []
        api_create = ip_create = api_delete = ip_delete = 0.0
        self.hook("start", "ports")
        t_all = now()
        for i, x in enumerate(xmls):
            t = now()
            ports.append(net.portCreateXML(x, 0))
            api_create += now() - t
            if self.side == "libvirt":
                # What the hypervisor side does for libvirt: make the TAP
                # and plug it into the bridge the port names.
                t = now()
                sh(["ip", "tuntap", "add", "dev", f"vnet{i}", "mode", "tap",
                    "vnet_hdr"])
                sh(["ip", "link", "set", "dev", f"vnet{i}", "master", bridge,
                    "up"])
                ip_create += now() - t
        create_total = now() - t_all
        plugged = len(os.listdir(f"/sys/class/net/{bridge}/brif"))
        t_all = now()
        for i, p in enumerate(ports):
            t = now()
            p.delete()
            api_delete += now() - t
            if self.side == "libvirt":
                t = now()
                sh(["ip", "link", "del", f"vnet{i}"])
                ip_delete += now() - t
        delete_total = now() - t_all
        self.hook("stop", "ports")
        left = len(os.listdir(f"/sys/class/net/{bridge}/brif"))
        net.destroy()
        self.r["ports"] = {
            "count": PORTS,
            "create_total_s": create_total,
            "delete_total_s": delete_total,
            "create_api_s": api_create,
            "create_ip_s": ip_create,
            "delete_api_s": api_delete,
            "delete_ip_s": ip_delete,
            "plugged_after_create": plugged,
            "left_after_delete": left,
        }

    def many_up(self):
        conn = self.conn
        xmls = [net_xml(f"bn{i:03d}", f"vbn{i}", f"10.101.{i}") for i in range(MANY)]
        define = start = 0.0
        self.hook("start", "define_start_100")
        t_all = now()
        for x in xmls:
            t = now()
            n = conn.networkDefineXML(x)
            define += now() - t
            t = now()
            n.create()
            start += now() - t
        total = now() - t_all
        self.hook("stop", "define_start_100")
        self.r["define_start_100"] = {"total_s": total, "define_s": define,
                                      "start_s": start}

    def memory(self):
        time.sleep(1.0)  # let dnsmasq processes finish starting
        dns = pids_named("dnsmasq")
        self.r["memory_100_active"] = {
            "daemon_rss_kib": rss_kib(self.d.pid()),
            "dnsmasq_processes": len(dns),
            "dnsmasq_rss_kib_total": sum(rss_kib(p) or 0 for p in dns),
        }

    def guest(self):
        self.traffic.setup_wan()
        self.traffic.attach_guest("vbn0", "10.101.0")

    def wait_ready(self, limit=300):
        """Polls until the daemon answers a request; returns seconds."""
        libvirt = self.libvirt
        deadline = now() + limit
        last = None
        while now() < deadline:
            try:
                c = libvirt.open(self.d.uri)
                c.listAllNetworks(0)
                return c
            except libvirt.libvirtError as e:
                last = e
                time.sleep(0.001)
        raise RuntimeError(f"daemon did not answer within {limit}s: {last}")

    def restart(self):
        if not self.traffic.ready:
            raise RuntimeError("no guest traffic")
        try:
            self.conn.close()
        except Exception:
            pass
        self.conn = None
        self.traffic.ping_start()
        t = now()
        self.d.stop()
        stop_s = now() - t
        t0 = now()
        exec_epoch = time.time()
        starter = self.d.start()
        try:
            self.conn = self.wait_ready()
        finally:
            ready_s = now() - t0
            ready_epoch = time.time()
            starter.wait(timeout=120)
            if self.conn is None:
                self.traffic.ping_stop()
        # Keep pinging while the daemon finishes whatever it does after
        # answering (libvirt reloads firewall rules, virtnet re-adopts).
        time.sleep(2.0)
        loss = self.traffic.ping_stop()
        # A profiler that followed the restarted daemon from its exec
        # (BENCH_RESTART_WRAP) lets go of it here.
        self.hook("stop", "restart")
        active = sum(1 for n in self.conn.listAllNetworks(0) if n.isActive())
        self.r["restart_100_active"] = {
            "stop_s": stop_s,
            "ready_s": ready_s,
            "exec_epoch": exec_epoch,
            "ready_epoch": ready_epoch,
            "ping": loss,
            "active_after": active,
            "daemon_rss_kib_after": rss_kib(self.d.pid()),
        }

    def updates(self):
        if not self.traffic.ready:
            raise RuntimeError("no guest traffic")
        lv = self.libvirt
        net = self.conn.networkLookupByName("bn000")
        flags = lv.VIR_NETWORK_UPDATE_AFFECT_LIVE | lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG
        add, dele = lv.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, lv.VIR_NETWORK_UPDATE_COMMAND_DELETE
        dhcp, dns = lv.VIR_NETWORK_SECTION_IP_DHCP_HOST, lv.VIR_NETWORK_SECTION_DNS_HOST
        calls = []
        for k in range(UPDATES // 4):
            h = (f"<host mac='52:54:00:aa:00:{k:02x}' name='upd{k}' "
                 f"ip='10.101.0.{10 + k}'/>")
            d = f"<host ip='10.101.0.{10 + k}'><hostname>dns{k}</hostname></host>"
            calls += [(add, dhcp, h, "add ip-dhcp-host"), (add, dns, d, "add dns-host"),
                      (dele, dhcp, h, "delete ip-dhcp-host"),
                      (dele, dns, d, "delete dns-host")]
        self.traffic.ping_start()
        lat = {}
        self.hook("start", "updates")
        t_all = now()
        for cmd, sec, xml, what in calls:
            t = now()
            net.update(cmd, sec, -1, xml, flags)
            lat.setdefault(what, []).append(now() - t)
        total = now() - t_all
        self.hook("stop", "updates")
        time.sleep(1.0)
        loss = self.traffic.ping_stop()
        self.r["updates"] = {
            "count": len(calls),
            "total_s": total,
            "median_s": {k: median(v) for k, v in lat.items()},
            "ping": loss,
        }

    def many_down(self):
        conn = self.conn
        nets = [conn.networkLookupByName(f"bn{i:03d}") for i in range(MANY)]
        destroy = undefine = 0.0
        self.hook("start", "destroy_undefine_100")
        t_all = now()
        for n in nets:
            t = now()
            n.destroy()
            destroy += now() - t
            t = now()
            n.undefine()
            undefine += now() - t
        total = now() - t_all
        self.hook("stop", "destroy_undefine_100")
        self.r["destroy_undefine_100"] = {"total_s": total, "destroy_s": destroy,
                                          "undefine_s": undefine}

    def listing(self):
        conn = self.conn
        t = now()
        for i in range(LISTED):
            conn.networkDefineXML(
                net_xml(f"ln{i:03d}", f"vl{i}", f"10.{110 + i // 256}.{i % 256}"))
        self.r["define_500_s"] = now() - t
        # What `virsh net-list --all` asks: the list, then for each network
        # its name, whether it is active, autostarts and is persistent.
        times = []
        self.hook("start", "list_500")
        for _ in range(LIST_REPEATS):
            t = now()
            rows = []
            for n in conn.listAllNetworks(0):
                rows.append((n.name(), n.isActive(), n.autostart(), n.isPersistent()))
            times.append(now() - t)
        self.hook("stop", "list_500")
        # "single" is defined as well.
        self.r["list_500"] = {"s": times, "rows": len(rows)}
        cli = {}
        tools = [("virsh", self.virsh)]
        if self.virtnet_cli:
            tools.append(("virtnet", self.vcli))
        for tool, mk in tools:
            try:
                ts = []
                for _ in range(CLI_LIST_REPEATS):
                    dt, out = self.timed_cli(mk("net-list", "--all"))
                    ts.append(dt)
                cli[tool] = {"s": ts, "rows": len([x for x in out.splitlines() if x.strip()])}
            except Exception as e:
                cli[tool] = {"error": str(e)}
        self.r["cli_list_500"] = cli

    def run(self):
        self.phase("versions", self.versions, 30)
        self.phase("start_destroy", self.start_destroy, 180)
        self.phase("start_destroy_cli", self.start_destroy_cli, 240)
        self.phase("ports", self.ports, 180)
        self.phase("define_start_100", self.many_up, 300)
        self.phase("memory", self.memory, 30)
        self.phase("guest", self.guest, 60)
        self.phase("restart", self.restart, 400)
        self.phase("updates", self.updates, 300)
        self.phase("destroy_undefine_100", self.many_down, 300)
        self.phase("list_500", self.listing, 300)


def inner(args):
    results = {"side": args.inner}
    t = now()
    try:
        Bench(args.inner, args.virtnet_cli, results).run()
    except Exception as e:
        results.setdefault("errors", {})["setup"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    results["wall_s"] = now() - t
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    return 0


# --------------------------------------------------------------------------
# Outer: run both sides, compare, report.


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": cpu,
        "memory": mem,
    }


def versions(virtnetd):
    import libvirt

    return {
        "libvirtd": first_line(["libvirtd", "--version"]),
        "virsh": first_line(["virsh", "--version"]),
        "libvirt-python": libvirt.getVersion(),
        "virtnetd": first_line([virtnetd, "--version"]),
        "dnsmasq": first_line(["dnsmasq", "--version"]),
        "nft": first_line(["nft", "--version"]),
        "iptables": first_line(["iptables", "--version"]),
        "python": platform.python_version(),
        "virtnet commit": first_line(["git", "-C", HERE, "describe", "--always",
                                      "--dirty", "--exclude", "*"]),
    }


def run_side(side, args, outdir):
    out = os.path.join(outdir, f"raw-{side}.json")
    if os.path.exists(out):
        os.unlink(out)
    me = [sys.executable, os.path.abspath(__file__), "--inner", side, "--out", out]
    if args.virtnet_cli:
        me += ["--virtnet-cli", args.virtnet_cli]
    if args.quick:
        me.append("--quick")
    env = dict(os.environ)
    env.setdefault("VIRTNETD_LOG", os.path.join(outdir, "virtnetd.log"))
    if side == "libvirt":
        cmd = [os.path.join(HERE, "libvirt-sandbox"), *me]
    else:
        env["VIRTNETD"] = args.virtnetd
        cmd = [os.path.join(HERE, "virtnet-sandbox"), *me]
    sys.stderr.write(f"== {side}: {' '.join(shlex.quote(c) for c in cmd)}\n")
    t = now()
    try:
        subprocess.run(cmd, env=env, timeout=args.side_timeout, check=False)
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"== {side}: timed out after {args.side_timeout}s\n")
    sys.stderr.write(f"== {side}: {now() - t:.1f}s\n")
    try:
        with open(out) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"side": side, "errors": {"run": f"no results: {e}"}}


def g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "ms":
        return f"{v * 1000:.1f} ms" if v < 10 else f"{v * 1000:.0f} ms"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "MiB":
        return f"{v / 1024:.1f} MiB"
    if unit == "/s":
        return f"{v:.0f}/s"
    if unit == "n":
        return f"{v:g}"
    return str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rate(count, seconds):
    return count / seconds if count and seconds else None


def rows(lv, vn):
    """(label, unit, libvirt, virtnet, target text, met?)"""

    def both(f):
        return f(lv), f(vn)

    out = []

    def add(label, unit, f, target=None, better="lower", check=None):
        a, b = both(f)
        r = ratio(b, a)
        met = None
        if check is not None and b is not None:
            met = check(b, r)
        out.append((label, unit, a, b, r, target, met))

    add("net-start, NAT + DHCP (median of %d)" % START_STOP_CYCLES, "ms",
        lambda s: median(g(s, "net_start_s") or []),
        "≤ 0.2", check=lambda b, r: r is not None and r <= 0.2)
    add("net-destroy, NAT + DHCP (median of %d)" % START_STOP_CYCLES, "ms",
        lambda s: median(g(s, "net_destroy_s") or []),
        "≤ 0.2", check=lambda b, r: r is not None and r <= 0.2)
    add("define + start of %d networks" % MANY, "s",
        lambda s: g(s, "define_start_100", "total_s"),
        "≤ 0.2", check=lambda b, r: r is not None and r <= 0.2)
    add("destroy + undefine of %d networks" % MANY, "s",
        lambda s: g(s, "destroy_undefine_100", "total_s"),
        "≤ 0.2", check=lambda b, r: r is not None and r <= 0.2)
    add("list %d inactive networks like `net-list --all` (median of %d)"
        % (LISTED, LIST_REPEATS), "ms",
        lambda s: median(g(s, "list_500", "s") or []),
        "≤ 0.3", check=lambda b, r: r is not None and r <= 0.3)
    add("ports: create → plugged TAP", "/s",
        lambda s: rate(g(s, "ports", "count"), g(s, "ports", "create_total_s")),
        "≥ 1000/s", check=lambda b, r: b >= 1000)
    add("ports: delete", "/s",
        lambda s: rate(g(s, "ports", "count"), g(s, "ports", "delete_total_s")),
        "≥ 1000/s", check=lambda b, r: b >= 1000)
    add("daemon RSS, %d active networks" % MANY, "MiB",
        lambda s: g(s, "memory_100_active", "daemon_rss_kib"),
        "≤ 0.5", check=lambda b, r: r is not None and r <= 0.5)
    add("dnsmasq processes (count)", "n",
        lambda s: g(s, "memory_100_active", "dnsmasq_processes"))
    add("dnsmasq RSS, all processes", "MiB",
        lambda s: g(s, "memory_100_active", "dnsmasq_rss_kib_total"))
    add("restart with %d active: exec → answers" % MANY, "ms",
        lambda s: g(s, "restart_100_active", "ready_s"),
        "< 200 ms", check=lambda b, r: b < 0.2)
    add("restart: guest ping packets lost (`ping -i 0.01`)", "n",
        lambda s: g(s, "restart_100_active", "ping", "lost"),
        "0", check=lambda b, r: b == 0)
    add("%d live net-updates: total time" % UPDATES, "s",
        lambda s: g(s, "updates", "total_s"))
    add("%d live net-updates: guest ping packets lost" % UPDATES, "n",
        lambda s: g(s, "updates", "ping", "lost"),
        "0", check=lambda b, r: b == 0)
    return out


def cli_rows(lv, vn):
    out = []
    for label, key, sub in [
        ("net-start (median of %d)" % CLI_CYCLES, "cli_start_destroy", "net_start_s"),
        ("net-destroy (median of %d)" % CLI_CYCLES, "cli_start_destroy", "net_destroy_s"),
        ("net-list --all, %d networks (median of %d)" % (LISTED, CLI_LIST_REPEATS),
         "cli_list_500", "s"),
    ]:
        cells = []
        for side in (lv, vn):
            for tool in ("virsh", "virtnet"):
                v = g(side, key, tool, sub)
                err = g(side, key, tool, "error")
                cells.append(fmt(median(v), "ms") if v else ("error" if err else "–"))
        out.append((label, cells))
    return out


def ping_text(p):
    rate = f", {p['rate_hz']:.0f} per second achieved" if p.get("rate_hz") else ""
    return f"{p['lost']} of {p['sent']} lost{rate}"


def render(lv, vn, meta):
    L = []
    L.append("# virtnetd vs libvirt's network driver")
    L.append("")
    L.append(f"Date: {meta['date']}  ")
    m = meta["machine"]
    L.append(f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, "
             f"kernel {m['kernel']}  ")
    v = meta["versions"]
    L.append(f"Versions: {v['libvirtd']}; {v['virtnetd']}; {v['dnsmasq']}; "
             f"{v['nft']}; {v['iptables']}; libvirt-python {v['libvirt-python']}; "
             f"virtnet commit {v.get('virtnet commit', '?')}  ")
    load = ""
    if "loadavg_before" in meta:
        load = (f"; 1-minute load average {meta['loadavg_before']:.2f} before, "
                f"{meta['loadavg_after']:.2f} after (other work on the machine skews both sides)")
    L.append(f"Run time: {meta['run_s']:.0f} s (libvirt {lv.get('wall_s', 0):.0f} s, "
             f"virtnet {vn.get('wall_s', 0):.0f} s){load}")
    L.append("")
    L.append("Client: the same libvirt-python process drives each daemon "
             "(one process per daemon run). Ratio = virtnet / libvirt.")
    L.append("")
    L.append("| measurement | libvirt 9.0 | virtnet | ratio | target | met |")
    L.append("|---|---:|---:|---:|---|---|")
    for label, unit, a, b, r, target, met in rows(lv, vn):
        rs = f"{r:.2f}" if r is not None else "–"
        ms = {True: "yes", False: "**no**", None: ""}[met]
        L.append(f"| {label} | {fmt(a, unit)} | {fmt(b, unit)} | {rs} | "
                 f"{target or ''} | {ms} |")
    L.append("")
    # Port details.
    pl, pv = lv.get("ports") or {}, vn.get("ports") or {}
    if pl and pv:
        n = pl.get("count")
        L.append(f"Ports ({n} created, then deleted, on one NAT network): libvirt's "
                 f"net-port-create {fmt(pl['create_api_s'] / n, 'ms')} + "
                 f"`ip tuntap add` and `ip link set master up` "
                 f"{fmt(pl['create_ip_s'] / n, 'ms')} per port; delete "
                 f"{fmt(pl['delete_api_s'] / n, 'ms')} + `ip link del` "
                 f"{fmt(pl['delete_ip_s'] / n, 'ms')}. virtnet's NETWORK_PORT_CREATE_XML "
                 f"(TAP created and plugged by the daemon) "
                 f"{fmt(pv['create_api_s'] / n, 'ms')}, delete "
                 f"{fmt(pv['delete_api_s'] / n, 'ms')}. TAPs on the bridge after "
                 f"creating: libvirt {pl.get('plugged_after_create')}, "
                 f"virtnet {pv.get('plugged_after_create')}.")
        L.append("")
    for side, s in (("libvirt", lv), ("virtnet", vn)):
        d = s.get("define_start_100") or {}
        u = s.get("destroy_undefine_100") or {}
        rs = s.get("restart_100_active") or {}
        up = s.get("updates") or {}
        bits = []
        if d:
            bits.append(f"define {fmt(d['define_s'], 's')} + start {fmt(d['start_s'], 's')}")
        if u:
            bits.append(f"destroy {fmt(u['destroy_s'], 's')} + undefine "
                        f"{fmt(u['undefine_s'], 's')}")
        if rs:
            bits.append(f"restart: SIGTERM → exit {fmt(rs['stop_s'], 'ms')}, "
                        f"{rs['active_after']} networks active after, "
                        f"ping {ping_text(rs['ping'])}")
        if up:
            med = ", ".join(f"{k} {fmt(v, 'ms')}" for k, v in up["median_s"].items())
            bits.append(f"net-update medians: {med}; ping {ping_text(up['ping'])}")
        if s.get("define_500_s") is not None:
            bits.append(f"defining the {LISTED} listed networks {fmt(s['define_500_s'], 's')}")
        if bits:
            L.append(f"{side}: " + "; ".join(bits) + ".")
            L.append("")
    cl, cv = lv.get("daemon_cpu_s") or {}, vn.get("daemon_cpu_s") or {}
    shown = [p for p in ("start_destroy", "ports", "define_start_100", "updates",
                         "destroy_undefine_100", "list_500") if p in cl or p in cv]
    if shown:
        L.append("CPU time of the daemon process during each phase (its own threads + "
                 "the child processes it ran and reaped, from /proc/PID/stat; 10 ms ticks):")
        L.append("")
        L.append("| phase | libvirtd | virtnetd |")
        L.append("|---|---:|---:|")
        for p in shown:
            def c(x):
                return f"{x[0]:.2f} s + {x[1]:.2f} s" if x else "–"
            L.append(f"| {p} | {c(cl.get(p))} | {c(cv.get(p))} |")
        L.append("")
    L.append("What a person types (wall time of one command, process start included):")
    L.append("")
    L.append("| command | virsh → libvirt | virtnet → libvirt | virsh → virtnetd | "
             "virtnet → virtnetd |")
    L.append("|---|---:|---:|---:|---:|")
    for label, cells in cli_rows(lv, vn):
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("")
    errs = []
    for side, s in (("libvirt", lv), ("virtnet", vn)):
        for k, e in (s.get("errors") or {}).items():
            errs.append(f"- {side} {k}: {e}")
        for tool, c in ((s.get("cli_start_destroy") or {}) | {}).items():
            if "error" in c:
                errs.append(f"- {side} {tool} net-start/net-destroy: {c['error']}")
        for tool, c in (s.get("cli_list_500") or {}).items():
            if "error" in c:
                errs.append(f"- {side} {tool} net-list: {c['error']}")
    if errs:
        L.append("Failures:")
        L.append("")
        L.extend(errs)
        L.append("")
    L.append("net-start/net-destroy repeat on the same network (`single`, bridge vbs0, "
             "10.100.0.0/24) after one uncounted warm-up cycle; the 100 networks use "
             "bridges vbn0…vbn99 and 10.101.0.0/24…10.101.99.0/24. Restart: SIGTERM, "
             "wait for exit, exec the daemon, poll (connect + list) until it answers; "
             "a guest namespace on vbn0 pings a wan namespace through NAT every 10 ms "
             "from before the stop until 2 s after the answer. Reproduce with "
             "`bench/compare-libvirt`.")
    return "\n".join(L) + "\n"


def outer(args):
    t = now()
    outdir = args.results
    os.makedirs(outdir, exist_ok=True)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(args.virtnetd),
    }
    meta["loadavg_before"] = os.getloadavg()[0]
    sides = {}
    for side in args.sides.split(","):
        sides[side] = run_side(side, args, outdir)
    meta["run_s"] = now() - t
    meta["loadavg_after"] = os.getloadavg()[0]
    lv, vn = sides.get("libvirt", {}), sides.get("virtnet", {})
    md = render(lv, vn, meta)
    with open(os.path.join(outdir, "LATEST.md"), "w") as f:
        f.write(md)
    with open(os.path.join(outdir, "LATEST.json"), "w") as f:
        json.dump({"meta": meta, "libvirt": lv, "virtnet": vn}, f, indent=1)
    sys.stdout.write(md)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inner", choices=["libvirt", "virtnet"])
    ap.add_argument("--out")
    ap.add_argument("--virtnetd", default=shutil.which("virtnetd"))
    ap.add_argument("--virtnet-cli", default=shutil.which("virtnet"))
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--sides", default="virtnet,libvirt")
    ap.add_argument("--side-timeout", type=int, default=420)
    ap.add_argument("--render", metavar="JSON",
                    help="only print the table again from a LATEST.json")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, to check the script itself")
    args = ap.parse_args()
    if args.quick:
        global START_STOP_CYCLES, CLI_CYCLES, MANY, LISTED, PORTS, UPDATES
        global LIST_REPEATS, CLI_LIST_REPEATS
        START_STOP_CYCLES, CLI_CYCLES, MANY, LISTED = 3, 2, 10, 40
        PORTS, UPDATES, LIST_REPEATS, CLI_LIST_REPEATS = 20, 20, 2, 2
    if os.geteuid() != 0:
        sys.exit("compare_libvirt: needs root (namespaces, bridges, firewall)")
    if args.render:
        with open(args.render) as f:
            j = json.load(f)
        sys.stdout.write(render(j.get("libvirt", {}), j.get("virtnet", {}), j["meta"]))
        return 0
    if args.inner:
        return inner(args)
    if not args.virtnetd:
        sys.exit("compare_libvirt: virtnetd not found (--virtnetd)")
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
