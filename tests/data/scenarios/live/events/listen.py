"""Prints the network lifecycle events a libvirt-python client receives.

    /usr/bin/python3 listen.py URI [NETWORK]

Opens URI read-only, registers for lifecycle events (of NETWORK only, if
given) with virConnectNetworkEventRegisterAny, runs libvirt's default event
loop in a thread and prints `registered`, then one `NAME EVENT` line per
event, until its standard input closes.
"""

import sys
import threading

import libvirt

NAMES = {
    libvirt.VIR_NETWORK_EVENT_DEFINED: "Defined",
    libvirt.VIR_NETWORK_EVENT_UNDEFINED: "Undefined",
    libvirt.VIR_NETWORK_EVENT_STARTED: "Started",
    libvirt.VIR_NETWORK_EVENT_STOPPED: "Stopped",
}


def lifecycle(conn, net, event, detail, opaque):
    print("%s %s" % (net.name(), NAMES.get(event, event)), flush=True)


def loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def main():
    uri = sys.argv[1]
    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.openReadOnly(uri)
    net = conn.networkLookupByName(sys.argv[2]) if len(sys.argv) > 2 else None
    conn.networkEventRegisterAny(
        net, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, lifecycle, None
    )
    threading.Thread(target=loop, daemon=True).start()
    print("registered", flush=True)
    sys.stdin.read()


main()
