#!/bin/sh
# Writes hooks.out: how libvirt's own network driver calls its network
# hooks (bench/libvirt-sandbox: private network, mount and pid namespaces,
# a private copy of /etc/libvirt), for the steps that
# tests/tests/scenario_live_hooks.rs repeats against virtnetd:
#
#   net-define hooks.xml; net-start; net-port-create port.xml;
#   net-port-delete; net-update (add a DHCP host, live); net-destroy;
#   then, with `fail-start` present, net-start (refused by the hook).
#
# The update comes after the port is gone: libvirt 9.0 rebuilds the live
# definition of a network updated live from its XML and loses its count of
# connected ports on the way (the next hooks would show no `connections`
# while a port is still connected); virtnet keeps the count.
#
# The hooks are `network` and `network.d/extra` of this directory; hooks.out
# is the log they wrote, then the output of the refused net-start.
# libvirtd looks for hook scripts when it starts, so the sandbox's libvirtd
# is restarted once they are in place.
#
#   tests/data/scenarios/live/hooks/generate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../../.." && pwd)
if [ "${1:-}" != --inside ]; then
    "$root/bench/libvirt-sandbox" sh "$here/generate.sh" --inside >"$here/hooks.out.new"
    mv "$here/hooks.out.new" "$here/hooks.out"
    exit 0
fi

V="virsh -c network:///system"
hooks=/etc/libvirt/hooks
mkdir -p "$hooks/network.d"
cp "$here/network" "$hooks/network"
cp "$here/extra" "$hooks/network.d/extra"
kill "$(cat /run/libvirtd.pid)"
i=0
while [ -e /run/libvirtd.pid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
LIBVIRT_DRIVER_DIR=/run/libvirt-drivers libvirtd -d
i=0
while ! $V version >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done

cd "$here"
{
    $V net-define hooks.xml
    $V net-start hooks
    $V net-port-create hooks port.xml
    $V net-port-delete hooks 5d6c3a44-1d2f-4d57-9f5a-1b2c3d4e5f60
    $V net-update hooks add ip-dhcp-host "<host mac='52:54:00:94:00:0b' ip='10.94.0.11'/>" --live
    $V net-destroy hooks
} >/dev/null
cat "$hooks/hooks.log"
: >"$hooks/hooks.log"
touch "$hooks/fail-start"
echo "\$ net-start hooks (refused)"
$V net-start hooks 2>&1 || echo "= $?"
cat "$hooks/hooks.log"
echo "\$ ip link show vnhook0"
ip link show vnhook0 2>&1 || true
