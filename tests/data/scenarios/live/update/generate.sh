#!/bin/sh
# Writes the expected transcript of every net-update case (NAME.steps ->
# NAME.out) by running its steps through Debian's virsh against libvirt's own
# network driver, in a private sandbox (bench/libvirt-sandbox: its own
# network, mount and pid namespaces; nothing of the host is touched).
#
#   tests/data/scenarios/live/update/generate.sh [NAME...]
#
# Needs root, libvirt-daemon (libvirtd and its network driver), iptables and
# libvirt-clients (virsh). A case whose first line is `#! expect: libvirt 11`
# shows where the libvirt generating the data (9.0) differs from the libvirt
# virtnet follows (11.x): its transcript goes to NAME.libvirt-9.0.out for
# reference and NAME.out is kept by hand (see README.md).
#
# Transcript format, per step:
#   $ STEP            the step as written in NAME.steps
#   | LINE            a line of standard output
#   ! LINE            a line of standard error
#   | \ no newline    (or `! \ no newline`) the stream did not end in a newline
#   = CODE            the exit status
# A step `@file PATH` prints PATH of the dnsmasq state (libvirt:
# /var/lib/libvirt/PATH); the daemons' directories are written as @STATE@ and
# @RUN@ there, so the files of both can be compared.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../../.." && pwd)

if [ "${1:-}" != --case ]; then
    if [ $# -eq 0 ]; then
        set -- $(cd "$here" && ls *.steps | sed 's/\.steps$//')
    fi
    libvirtd --version >"$here/VERSION"
    virsh --version | sed 's/^/virsh /' >>"$here/VERSION"
    for name in "$@"; do
        echo "== $name"
        "$root/bench/libvirt-sandbox" sh "$here/generate.sh" --case "$name"
    done
    exit 0
fi

# Inside the sandbox: run one case.
name=$2
steps="$here/$name.steps"
out="$here/$name.out"
if head -n1 "$steps" | grep -q '^#! expect: libvirt 11'; then
    out="$here/$name.libvirt-9.0.out"
fi
tmp=$(mktemp -d)
cd "$here"

# emit PREFIX FILE: FILE's lines behind PREFIX, and a marker when it does not
# end in a newline.
emit() {
    [ -s "$2" ] || return 0
    sed "s/^/$1 /" "$2"
    if [ "$(tail -c1 "$2" | od -An -tx1 | tr -d ' \n')" != 0a ]; then
        printf '\n%s \\ no newline\n' "$1"
    fi
}

subst() {
    sed -e 's#/var/lib/libvirt/dnsmasq#@STATE@/dnsmasq#g' \
        -e 's#/run/libvirt/network#@RUN@/network#g' "$1"
}

: >"$out"
while IFS= read -r line; do
    case "$line" in
        '' | '#'*) continue ;;
    esac
    printf '$ %s\n' "$line" >>"$out"
    case "$line" in
        '@file '*)
            path=${line#@file }
            if [ -f "/var/lib/libvirt/$path" ]; then
                subst "/var/lib/libvirt/$path" >"$tmp/stdout"
                : >"$tmp/stderr"
                rc=0
            else
                : >"$tmp/stdout"
                echo "no such file" >"$tmp/stderr"
                rc=1
            fi
            ;;
        *)
            eval "set -- $line"
            rc=0
            virsh -c network:///system "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null || rc=$?
            ;;
    esac
    {
        emit '|' "$tmp/stdout"
        emit '!' "$tmp/stderr"
        echo "= $rc"
    } >>"$out"
done <"$steps"
rm -rf "$tmp"
