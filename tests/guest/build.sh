#!/bin/sh
# Builds (and caches) the kernel and initramfs of the test guest that
# virtnet's end-to-end scenarios boot under QEMU.
#
#   tests/guest/build.sh [--offline]
#
# Kernel: Debian's cloud kernel (the package the linux-image-cloud-amd64
# metapackage depends on), fetched with `apt-get download` into
# $GUEST_DIR/debs. Initramfs: busybox-static, the virtio-net modules, and
# tests/guest/init. Output directory: $VIRTNET_GUEST_DIR, else
# ${CARGO_TARGET_DIR:-<workspace>/target}/guest.
#
# --offline never touches the network: it uses the newest kernel package
# already in $GUEST_DIR/debs (tests run in a namespace without network, so
# they call it this way; run it once without --offline beforehand).
#
# On success prints KERNEL=<path>, INITRD=<path> and KVER=<version>.
# Exit status 3: no kernel package available (the caller should skip).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ws=$(cd "$here/../.." && pwd)
out=${VIRTNET_GUEST_DIR:-${CARGO_TARGET_DIR:-$ws/target}/guest}
busybox=${VIRTNET_BUSYBOX:-/bin/busybox}
offline=0
[ "${1:-}" = "--offline" ] && offline=1

# Loaded in this order by /init; missing ones must be built into the kernel.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"

unavailable() { echo "guest: $*" >&2; exit 3; }
die() { echo "guest: $*" >&2; exit 1; }

[ -x "$busybox" ] || unavailable "busybox not found at $busybox (install busybox-static)"
mkdir -p "$out/debs" 2>/dev/null || true
# A cache we may not write to (another user's) can still be used as it is.
writable=0
if [ -w "$out" ] && [ -w "$out/debs" ]; then
    writable=1
    exec 9>"$out/.lock"
    flock -w 600 9 || die "cannot lock $out/.lock"
fi
need_write() {
    [ "$writable" = 1 ] || unavailable "guest cache $out is not writable and lacks $1; run tests/guest/build.sh as its owner"
}

# --- 1. the kernel package -------------------------------------------------
deb=
if [ "$offline" = 0 ]; then
    resolve() {
        apt-cache depends linux-image-cloud-amd64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
    }
    pkg=$(resolve)
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        pkg=$(resolve)
    fi
    [ -n "$pkg" ] || unavailable "cannot resolve linux-image-cloud-amd64 (no Debian package lists)"
    deb=$(ls -1 "$out/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$deb" ]; then
        need_write "$pkg"
        (cd "$out/debs" && apt-get download "$pkg" >&2) ||
            unavailable "apt-get download $pkg failed"
        deb=$(ls -1 "$out/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n 1)
    fi
else
    deb=$(ls -1 "$out"/debs/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$deb" ] && [ -f "$deb" ] ||
    unavailable "no guest kernel package in $out/debs; run tests/guest/build.sh (needs the Debian registry)"
pkg=$(basename "$deb" | sed 's/_.*//')
kver=${pkg#linux-image-}

# --- 2. kernel and modules -------------------------------------------------
kdir="$out/kernel-$kver"
if [ ! -f "$kdir/ready" ]; then
    need_write "the kernel $kver"
    tmp=$(mktemp -d "$out/.kernel.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    dpkg-deb -x "$deb" "$tmp/x"
    mkdir -p "$tmp/k/modules"
    cp "$tmp/x/boot/vmlinuz-$kver" "$tmp/k/vmlinuz"
    moddir="$tmp/x/lib/modules/$kver"
    : > "$tmp/k/modules.load"
    for m in $modules; do
        f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -n 1)
        if [ -z "$f" ]; then
            if grep -q "/$m\.ko" "$moddir/modules.builtin" 2>/dev/null; then
                continue # built in
            fi
            die "module $m is neither in $pkg nor built into its kernel"
        fi
        # busybox insmod wants plain ELF modules.
        case "$f" in
        *.ko.xz) xz -dc "$f" > "$tmp/k/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$tmp/k/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" > "$tmp/k/modules/$m.ko" ;;
        *) cp "$f" "$tmp/k/modules/$m.ko" ;;
        esac
        echo "$m" >> "$tmp/k/modules.load"
    done
    touch "$tmp/k/ready"
    rm -rf "$kdir"
    mv "$tmp/k" "$kdir"
    rm -rf "$tmp"
    trap - EXIT
fi

# --- 3. initramfs ----------------------------------------------------------
key=$(cat "$here/init" "$here/udhcpc.script" "$here/build.sh" "$busybox" "$kdir/modules.load" |
    sha256sum | cut -c1-16)
initrd="$out/initrd-$kver-$key.cpio.gz"
if [ ! -f "$initrd" ]; then
    need_write "$(basename "$initrd")"
    tmp=$(mktemp -d "$out/.initrd.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    root="$tmp/root"
    mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" \
        "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" "$root/lib/modules"
    cp "$busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    cp "$here/init" "$root/init"
    cp "$here/udhcpc.script" "$root/etc/udhcpc.script"
    chmod 755 "$root/init" "$root/etc/udhcpc.script"
    cp "$kdir/modules.load" "$root/etc/modules.load"
    for m in $(cat "$kdir/modules.load"); do
        cp "$kdir/modules/$m.ko" "$root/lib/modules/"
    done
    (cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) |
        gzip -1 > "$tmp/initrd"
    mv "$tmp/initrd" "$initrd"
    rm -rf "$tmp"
    trap - EXIT
fi

echo "KERNEL=$kdir/vmlinuz"
echo "INITRD=$initrd"
echo "KVER=$kver"
