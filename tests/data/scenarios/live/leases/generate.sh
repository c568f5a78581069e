#!/bin/sh
# Writes leases.out: what Debian's virsh shows of a network's DHCP leases
# when libvirt's own network driver runs it (bench/libvirt-sandbox: private
# network, mount and pid namespaces), for the steps that
# tests/tests/scenario_live_leases.rs repeats against virtnetd:
#
#   1. network `leases` (leases.xml) is defined and started;
#   2. guest a (MAC 52:54:00:91:00:0a, host name guest-a) leases with a
#      busybox udhcpc that stays running and releases its lease when it
#      stops (-R); then guest b (…:0b, guest-b) leases with one that quits
#      without releasing (-q);
#   3. net-dhcp-leases, and with --mac of b;
#   4. guest a's udhcpc stops: dnsmasq hears the release and the lease
#      helper drops it; net-dhcp-leases;
#   5. an expired lease (of …:0c) is written into the lease file by hand;
#      net-dhcp-leases;
#   6. the network is destroyed, then undefined: the lease file is kept by
#      the first and removed by the second.
#
# Expiry times depend on the clock: they are written as YYYY-MM-DD hh:mm:ss.
# Needs root, libvirt-daemon, iptables, libvirt-clients, busybox-static and
# /usr/bin/python3.
#
#   tests/data/scenarios/live/leases/generate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../../.." && pwd)
if [ "${1:-}" != --inside ]; then
    "$root/bench/libvirt-sandbox" sh "$here/generate.sh" --inside >"$here/leases.out.new"
    mv "$here/leases.out.new" "$here/leases.out"
    exit 0
fi

V="virsh -c network:///system"
tmp=$(mktemp -d)
cat >"$tmp/script" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    echo "$ip" >"$BOUND"
    ;;
esac
exit 0
SCRIPT
chmod +x "$tmp/script"

no_clock() {
    sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}/YYYY-MM-DD hh:mm:ss/g'
}
step() {
    echo "\$ $*"
    $V "$@" 2>&1 | no_clock
}
wait_file() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
    [ -s "$1" ]
}

cd "$here"
$V net-define leases.xml >/dev/null
$V net-start leases >/dev/null
for g in a b; do
    ip netns add "g$g"
    ip link add "vg$g" type veth peer name eth0 netns "g$g"
    ip link set "vg$g" master vnlease0 up
    ip -n "g$g" link set eth0 address "52:54:00:91:00:0$g"
    ip -n "g$g" link set eth0 up
    ip -n "g$g" link set lo up
done
BOUND=$tmp/a ip netns exec ga busybox udhcpc -i eth0 -f -R -x hostname:guest-a -s "$tmp/script" >/dev/null 2>&1 &
apid=$!
wait_file "$tmp/a"
BOUND=$tmp/b ip netns exec gb busybox udhcpc -i eth0 -f -q -n -t 20 -T 1 -x hostname:guest-b -s "$tmp/script" >/dev/null 2>&1
step net-dhcp-leases leases
step net-dhcp-leases leases --mac 52:54:00:91:00:0b
step net-dhcp-leases leases --mac 52:54:00:91:00:0c

kill -TERM $apid
wait $apid || true
status=/var/lib/libvirt/dnsmasq/vnlease0.status
i=0
while grep -q '52:54:00:91:00:0a' "$status" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
step net-dhcp-leases leases

/usr/bin/python3 - "$status" <<'PY'
import json, sys
path = sys.argv[1]
leases = json.load(open(path))
leases.append({"ip-address": "10.91.0.12", "mac-address": "52:54:00:91:00:0c",
               "hostname": "gone", "client-id": "01:52:54:00:91:00:0c",
               "expiry-time": 1000000000})
json.dump(leases, open(path, "w"), indent=2)
PY
step net-dhcp-leases leases
step net-dhcp-leases leases --mac 52:54:00:91:00:0c

$V net-destroy leases >/dev/null
echo "\$ ls STATE/dnsmasq (destroyed)"
ls /var/lib/libvirt/dnsmasq
$V net-undefine leases >/dev/null
echo "\$ ls STATE/dnsmasq (undefined)"
ls /var/lib/libvirt/dnsmasq
rm -rf "$tmp"
