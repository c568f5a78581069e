#!/bin/sh
# Writes access.out: what Debian's virsh (and libvirt-python, for
# port_params.py) answered over libvirt's read-only and read-write sockets
# for the steps of access.steps, with libvirt's own network driver in a
# private sandbox (bench/libvirt-sandbox). tests/tests/scenario_live_access.rs
# runs the same steps against virtnetd and compares byte for byte.
#
# A step is virsh's arguments, @RO@ and @RW@ standing for the URIs of the
# read-only and the read-write socket, or `@python SCRIPT ARGS`. The
# transcript format is that of ../update/generate.sh.
#
#   tests/data/scenarios/live/access/generate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../../.." && pwd)
if [ "${1:-}" != --inside ]; then
    "$root/bench/libvirt-sandbox" sh "$here/generate.sh" --inside >"$here/access.out.new"
    mv "$here/access.out.new" "$here/access.out"
    exit 0
fi

RO='network:///system?socket=/run/libvirt/libvirt-sock-ro'
RW='network:///system'
tmp=$(mktemp -d)
emit() {
    [ -s "$2" ] || return 0
    sed "s/^/$1 /" "$2"
    if [ "$(tail -c1 "$2" | od -An -tx1 | tr -d ' \n')" != 0a ]; then
        printf '\n%s \\ no newline\n' "$1"
    fi
}
cd "$here"
while IFS= read -r line; do
    case "$line" in
        '' | '#'*) continue ;;
    esac
    printf '$ %s\n' "$line"
    words=$(printf '%s' "$line" | sed -e "s#@RO@#'$RO'#g" -e "s#@RW@#'$RW'#g")
    eval "set -- $words"
    rc=0
    if [ "$1" = @python ]; then
        shift
        /usr/bin/python3 "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null || rc=$?
    else
        virsh "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null || rc=$?
    fi
    emit '|' "$tmp/stdout"
    emit '!' "$tmp/stderr"
    echo "= $rc"
done <"$here/access.steps"
rm -rf "$tmp"
